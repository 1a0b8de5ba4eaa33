/**
 * Binary SET over the item limit against the real server (issue 12, item 10): answered E2BIG, the
 * body is read and thrown away as it arrives (never buffered), and the connection stays in step —
 * as memcached does. Only a body declared over the documented bound (MAX_SKIPPED_BODY_BYTES,
 * 64 MiB) closes the connection. Raw frames, then memjs.
 */
import t from 'tap'
import memjs from 'memjs'
import { readFileSync } from 'node:fs'
import { serverFor, type RunningServer } from '../helpers/server.js'
import { BinaryClient, frame, get, op, set, u32s } from '../helpers/binary.js'
import { MAX_SKIPPED_BODY_BYTES } from '../../src/server/protocol/binary/parser.js'

const MiB = 1024 * 1024

let server: RunningServer
t.before(async () => {
  server = await serverFor(t, { config: { max_item_size: 64 * 1024 } })
})

async function connect(): Promise<BinaryClient> {
  const c = await BinaryClient.connect(server.port)
  t.teardown(() => c.close())
  return c
}

/** The server's resident set size in bytes (Linux). */
function rssBytes(): number {
  const status = readFileSync(`/proc/${server.proc.pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024
}

async function serverStats(c: BinaryClient): Promise<Map<string, string>> {
  c.send(frame({ opcode: op.STAT }))
  const stats = new Map<string, string>()
  for (let r = await c.response(); r.keyLength > 0; r = await c.response()) stats.set(r.key, r.value.toString())
  return stats
}

/** Write `total` bytes of `fill` in chunks, honouring backpressure. */
async function writeBody(c: BinaryClient, total: number, chunk = 256 * 1024): Promise<void> {
  const block = Buffer.alloc(chunk, 0x61)
  for (let sent = 0; sent < total; sent += chunk) {
    const n = Math.min(chunk, total - sent)
    if (!c.socket.write(n === chunk ? block : block.subarray(0, n))) {
      await new Promise<void>((r) => c.socket.once('drain', () => r()))
    }
  }
}

t.test('an over-limit SET is E2BIG and the same connection goes on', async (t) => {
  const c = await connect()
  const tooBig = set('over', Buffer.alloc(2 * MiB, 0x62), { opaque: 1 })
  c.send(Buffer.concat([set('over', 'before', { opaque: 0 }), tooBig, set('over', 'after', { opaque: 2 }), get('over', op.GET, 3)]))
  t.match(await c.response(), { opaque: 0, status: 0 })
  t.match(await c.response(), { opcode: op.SET, opaque: 1, status: 0x03 }, 'E2BIG')
  t.match(await c.response(), { opaque: 2, status: 0 }, 'the next SET on the same connection is stored')
  t.match(await c.response(), { opaque: 3, status: 0, value: Buffer.from('before') })
  t.match(await c.request(get('over', op.GET, 4)), { opaque: 4, status: 0, value: Buffer.from('after') })
  t.match(await c.request(get('over', op.GET, 5)), { opaque: 5, status: 1 }, 'nothing of the big one stored')
  t.equal(c.closed, false)
})

t.test('SETQ over the limit still gets its error; a body right at the item limit is stored', async (t) => {
  const c = await connect()
  c.send(set('quiet', Buffer.alloc(64 * 1024 + 1), { opaque: 7, quiet: true }))
  c.send(set('quiet', Buffer.alloc(64 * 1024, 0x63), { opaque: 8, quiet: true }))
  c.send(frame({ opcode: op.NOOP, opaque: 9 }))
  t.match(await c.response(), { opcode: op.SETQ, opaque: 7, status: 0x03 })
  t.match(await c.response(), { opcode: op.NOOP, opaque: 9, status: 0 }, 'the in-limit SETQ is silent')
  const r = await c.request(get('quiet', op.GET, 10))
  t.equal(r.value.length, 64 * 1024)
})

t.test('the refusal comes from the header alone and the body is streamed away, not buffered', async (t) => {
  const c = await connect()
  const body = 60 * MiB
  const header = frame({ opcode: op.SET, key: 'stream', extras: u32s(0, 0), opaque: 11, bodyLength: 8 + 6 + body })
  c.send(header)
  t.match(await c.response(), { opaque: 11, status: 0x03 }, 'E2BIG before any of the value was sent')
  const before = rssBytes()
  let peak = before
  const sampler = setInterval(() => (peak = Math.max(peak, rssBytes())), 20)
  await writeBody(c, body)
  t.match(await c.request(set('stream', 'small', { opaque: 12 })), { opaque: 12, status: 0 }, 'in step after 60 MiB swallowed')
  clearInterval(sampler)
  peak = Math.max(peak, rssBytes())
  t.ok(peak - before < body, `server RSS grew ${((peak - before) / MiB).toFixed(1)} MiB while swallowing 60 MiB`)
  t.match(await c.request(get('stream', op.GET, 13)), { status: 0, value: Buffer.from('small') })
})

t.test(`a body declared over ${MAX_SKIPPED_BODY_BYTES} bytes is E2BIG and closes (the documented bound)`, async (t) => {
  t.equal(MAX_SKIPPED_BODY_BYTES, 64 * MiB)
  const c = await connect()
  c.send(frame({ opcode: op.SET, key: 'k', extras: u32s(0, 0), opaque: 21, bodyLength: MAX_SKIPPED_BODY_BYTES + 1 }))
  t.match(await c.response(), { opaque: 21, status: 0x03 })
  await c.waitClosed()
  t.pass('closed')
  const d = await connect()
  t.match(await d.request(frame({ opcode: op.VERSION, opaque: 22 })), { opaque: 22, status: 0 }, 'server still serves')
})

t.test('memjs: an over-limit set fails, the next command on the same connection works', async (t) => {
  const mc = memjs.Client.create(`127.0.0.1:${server.port}`, { retries: 0, timeout: 5, logger: { log: () => {} } })
  t.teardown(() => mc.close())
  t.equal(await mc.set('memjs_over', 'first'), true)
  const watcher = await connect()
  const connectionsBefore = (await serverStats(watcher)).get('total_connections')
  const failed = await mc.set('memjs_over', Buffer.alloc(1 * MiB, 0x64)).then(
    () => 'resolved',
    (err: unknown) => (err instanceof Error ? err.message : String(err)),
  )
  t.match(failed, /too large/i, 'the set is refused with E2BIG')
  t.equal(await mc.set('memjs_over', 'second'), true)
  t.equal((await mc.get('memjs_over')).value?.toString(), 'first')
  t.equal((await mc.get('memjs_over')).value?.toString(), 'second')
  t.equal((await serverStats(watcher)).get('total_connections'), connectionsBefore, 'memjs did not have to reconnect')
})
