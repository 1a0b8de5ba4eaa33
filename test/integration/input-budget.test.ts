/**
 * max_input_bytes against the real server (issue 12, item 11): half-sent sets take their size from
 * one server-wide budget. 100 connections each 1 MB into an unfinished set, with a 4 MiB budget:
 * three fit, the others are refused at once (SERVER_ERROR out of memory storing object) and their
 * data is swallowed so they stay in step; small sets on other connections keep working; the
 * finished sets are stored intact; the server's memory stays bounded; closing gives the budget back.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { serverFor, startServer, removeDir, tempDir, type RunningServer } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'
import { BinaryClient, frame, op, u32s } from '../helpers/binary.js'

const MiB = 1024 * 1024
const BUDGET = 4 * MiB
const ITEM = 1_000_000
const SENT = ITEM - 10
const OOM = 'SERVER_ERROR out of memory storing object'

function rssBytes(server: RunningServer): number {
  const status = readFileSync(`/proc/${server.proc.pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024
}

async function stats(c: RawClient): Promise<Map<string, string>> {
  const lines = await c.request('stats\r\n', /^END$/)
  return new Map(lines.filter((l) => l.startsWith('STAT ')).map((l) => l.split(' ').slice(1, 3) as [string, string]))
}

async function statNumber(c: RawClient, name: string): Promise<number> {
  return Number((await stats(c)).get(name))
}

/** Write without holding the whole payload in one call, honouring backpressure. */
async function write(c: RawClient, data: Buffer): Promise<void> {
  if (!c.socket.write(data)) await new Promise<void>((r) => c.socket.once('drain', () => r()))
}

/** Wait until `pred` holds, polling `stats` on `c`. */
async function eventually(c: RawClient, pred: (s: Map<string, string>) => boolean, what: string): Promise<Map<string, string>> {
  const deadline = Date.now() + 30_000
  for (;;) {
    const s = await stats(c)
    if (pred(s)) return s
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify([...s].filter(([k]) => k.startsWith('input')))}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

t.test('100 connections each 1 MB into a set: bounded, refused in step, others unaffected', async (t) => {
  const server = await serverFor(t, { config: { max_input_bytes: BUDGET } })
  const watcher = await RawClient.connect(server.port)
  t.teardown(() => watcher.close())
  t.equal(await watcher.set('witness', 'kept'), 'STORED')
  const rssBefore = rssBytes(server)

  const senders: RawClient[] = []
  for (let i = 0; i < 100; i++) senders.push(await RawClient.connect(server.port))
  t.teardown(() => senders.forEach((c) => c.close()))
  const payload = (i: number): Buffer => Buffer.alloc(ITEM, 0x41 + (i % 26))
  // Each sends the line and all but the last 10 bytes of its data block, then stalls.
  await Promise.all(
    senders.map(async (c, i) => {
      await write(c, Buffer.from(`set big${i} 0 0 ${ITEM}\r\n`))
      await write(c, payload(i).subarray(0, SENT))
    }),
  )
  // Frames over 64 KiB get the budget less its small-frame reserve: 3.5 MiB, three 1 MB sets.
  const frame = `set big00 0 0 ${ITEM}\r\n`.length + ITEM + 2
  const admittedMax = Math.floor((BUDGET - BUDGET / 8) / frame)
  t.equal(admittedMax, 3)
  const s = await eventually(watcher, (s) => Number(s.get('input_refused')) >= 100 - admittedMax, 'the refusals')
  t.ok(Number(s.get('input_bytes')) <= BUDGET, `input_bytes ${s.get('input_bytes')} within the budget`)

  // Which senders were refused: they got the error line at once, before finishing their data.
  const refused = new Set<number>()
  await Promise.all(
    senders.map(async (c, i) => {
      const reply = await c.line(1500).catch(() => null)
      if (reply !== null) {
        t.equal(reply, OOM, `big${i}: refused with the documented error`)
        refused.add(i)
      }
    }),
  )
  t.equal(refused.size, 100 - admittedMax, `${refused.size} refused, ${100 - refused.size} admitted`)

  // Small commands on another connection keep working — even a set whose data comes in pieces.
  const small = await RawClient.connect(server.port)
  t.teardown(() => small.close())
  small.send('set small 0 0 10\r\n01234')
  await new Promise((r) => setTimeout(r, 50))
  t.same(await small.request('56789\r\n'), ['STORED'], 'a split small set is stored while the budget is taken')
  t.equal(await small.get('small'), '0123456789')
  t.equal(await small.get('witness'), 'kept')

  const grown = rssBytes(server) - rssBefore
  t.ok(grown < 64 * MiB, `server RSS grew ${(grown / MiB).toFixed(1)} MiB for 100 half-sent 1 MB sets`)

  // Everyone finishes. Admitted sets are stored intact; refused ones stay in step.
  await Promise.all(senders.map((c, i) => write(c, Buffer.concat([payload(i).subarray(SENT), Buffer.from('\r\n')]))))
  for (const [i, c] of senders.entries()) {
    if (refused.has(i)) {
      t.same(await c.request('version\r\n'), [(await watcher.request('version\r\n'))[0]!], `big${i}: in step after the swallowed data`)
    } else {
      t.equal(await c.line(), 'STORED', `big${i}: admitted and stored`)
    }
  }
  for (let i = 0; i < 100; i++) {
    const value = await watcher.get(`big${i}`)
    if (refused.has(i)) t.equal(value, null, `big${i}: nothing stored`)
    else t.ok(value !== null && Buffer.from(value, 'latin1').equals(payload(i)), `big${i}: intact`)
  }
  await eventually(watcher, (s) => s.get('input_bytes') === '0', 'the budget to be given back')
  t.pass('input_bytes is back to 0')
})

t.test('a closed connection gives its share back; binary and meta sets are refused the same way', async (t) => {
  const server = await serverFor(t, { config: { max_input_bytes: BUDGET } })
  const watcher = await RawClient.connect(server.port)
  t.teardown(() => watcher.close())
  const hogs: RawClient[] = []
  for (let i = 0; i < 3; i++) {
    const c = await RawClient.connect(server.port)
    hogs.push(c)
    c.send(`set hog${i} 0 0 ${ITEM}\r\nxxxx`)
  }
  await eventually(watcher, (s) => Number(s.get('input_bytes')) >= 3 * ITEM, 'three reservations')

  // Binary: the header is answered ENOMEM, the body swallowed, the connection goes on.
  const bin = await BinaryClient.connect(server.port)
  t.teardown(() => bin.close())
  const value = Buffer.alloc(ITEM, 0x42)
  const setFrame = frame({ opcode: op.SET, key: 'bin', extras: u32s(0, 0), value, opaque: 5 })
  bin.send(setFrame.subarray(0, 1000))
  t.match(await bin.response(), { opcode: op.SET, opaque: 5, status: 0x82 }, 'ENOMEM')
  bin.send(setFrame.subarray(1000))
  t.match(await bin.request(frame({ opcode: op.NOOP, opaque: 6 })), { opaque: 6, status: 0 }, 'binary in step')

  // Meta: ms is refused the same way (errors are not hidden by q).
  const meta = await RawClient.connect(server.port)
  t.teardown(() => meta.close())
  meta.send(`ms meta ${ITEM} q\r\nyyyy`)
  t.equal(await meta.line(), OOM)
  meta.send(Buffer.concat([Buffer.alloc(ITEM - 4, 0x79), Buffer.from('\r\nmn\r\n')]))
  t.equal(await meta.line(), 'MN', 'meta in step')

  for (const c of hogs) c.close()
  await eventually(watcher, (s) => s.get('input_bytes') === '0', 'closing to give the budget back')
  const c = await RawClient.connect(server.port)
  t.teardown(() => c.close())
  c.send(`set after 0 0 ${ITEM}\r\n`)
  await new Promise((r) => setTimeout(r, 50))
  c.send(Buffer.concat([Buffer.alloc(ITEM, 0x7a), Buffer.from('\r\n')]))
  t.equal(await c.line(), 'STORED', 'a large set fits again')
})

t.test('max_input_bytes is checked at start-up', async (t) => {
  const err = await startServer({ spool: tempDir(), config: { max_input_bytes: MiB } }).then(
    (s) => {
      void s.stop().then(() => removeDir(s.spool))
      return 'started'
    },
    (e: Error) => e.message,
  )
  t.match(err, /max_input_bytes \(1048576\) must be 0 \(unlimited\) or at least twice max_item_size/)
  const unlimited = await serverFor(t, { config: { max_input_bytes: 0 } })
  const c = await RawClient.connect(unlimited.port)
  t.teardown(() => c.close())
  t.equal(await statNumber(c, 'input_bytes'), 0)
})
