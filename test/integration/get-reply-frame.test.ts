/**
 * Issue 13: a plain single-key `get` has its item's payload copied out of the queue's memory
 * straight into the reply buffer (ReplyFrame, ValueFrame). Every way an item reaches a get must
 * still answer byte for byte: from memory, read back from disk (read-behind), an aborted open read
 * put back (no frame: a new buffer), handed straight to a blocked reader, with `gets` (cas), across
 * all sizes and flags whose digits change the header's length; binary GET and GETK likewise
 * (ItemFrame). Real server, real sockets.
 */
import t from 'tap'
import { serverFor } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'
import { BinaryClient, get as binGet, op, set as binSet } from '../helpers/binary.js'

function payload(i: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size)
  for (let k = 0; k < size; k++) b[k] = (i * 31 + k * 7) & 0xff // any byte, CR and LF included
  return b
}

const FLAGS = [0, 7, 10, 99, 12345, 4294967295]

/** Read one `get` reply: the item (flags, data, cas) or null for END. */
async function reply(c: RawClient, key: string): Promise<{ flags: number; data: Buffer; cas: string | undefined } | null> {
  const line = await c.line(20_000)
  if (line === 'END') return null
  const m = /^VALUE (\S+) (\d+) (\d+)(?: (\d+))?$/.exec(line)
  if (!m || m[1] !== key) throw new Error(`unexpected reply line ${JSON.stringify(line)}`)
  const data = Buffer.from(await c.bytes(Number(m[3]) + 2, 20_000))
  if (data.subarray(-2).toString('latin1') !== '\r\n') throw new Error('payload not followed by CRLF')
  const end = await c.line(20_000)
  if (end !== 'END') throw new Error(`expected END, got ${JSON.stringify(end)}`)
  return { flags: Number(m[2]), data: data.subarray(0, -2), cas: m[4] }
}

function setCmd(key: string, flags: number, data: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`set ${key} ${flags} 0 ${data.length}\r\n`, 'latin1'), data, Buffer.from('\r\n')])
}

t.test('pipelined gets from memory and from disk: every reply byte for byte, in order', async (t) => {
  const server = await serverFor(t, { config: { max_memory_size: '64KB' } })
  const c = await RawClient.connect(server.port)
  t.teardown(() => c.close())
  const N = 400
  const items = Array.from({ length: N }, (_, i) => ({ flags: FLAGS[i % FLAGS.length]!, data: payload(i, [0, 1, 9, 10, 100, 1000, 1024, 4000][i % 8]!) }))
  c.send(Buffer.concat(items.map((it) => setCmd('frame', it.flags, it.data))))
  for (let i = 0; i < N; i++) t.equal(await c.line(20_000), 'STORED')
  // most of them are beyond 64 KB of memory: read back from the journal as the gets go
  c.send('get frame\r\n'.repeat(N + 1))
  let bad = 0
  for (let i = 0; i < N; i++) {
    const got = await reply(c, 'frame')
    if (!got || got.flags !== items[i]!.flags || !got.data.equals(items[i]!.data)) bad++
  }
  t.equal(bad, 0, `${N} items back intact and in order`)
  t.equal(await reply(c, 'frame'), null, 'then END')
})

t.test('aborted open read, gets with cas, blocked reader: the same bytes as any get', async (t) => {
  const server = await serverFor(t)
  const c = await RawClient.connect(server.port)
  const p = await RawClient.connect(server.port)
  t.teardown(() => (c.close(), p.close()))
  const a = payload(1, 1500)
  const b = payload(2, 10)
  c.send(Buffer.concat([setCmd('fr', 4294967295, a), setCmd('fr', 10, b)]))
  t.equal(await c.line(), 'STORED')
  t.equal(await c.line(), 'STORED')
  c.send('get fr/open\r\n')
  t.same((await reply(c, 'fr/open'))?.data, a, 'open read')
  c.send('get fr/abort\r\n')
  t.equal(await reply(c, 'fr/abort'), null)
  c.send('get fr\r\n')
  const back = await reply(c, 'fr')
  t.same([back?.flags, back?.data], [4294967295, a], 'the aborted item, put back, by a plain get')
  c.send('gets fr\r\n')
  const withCas = await reply(c, 'fr')
  t.same([withCas?.flags, withCas?.data], [10, b], 'gets')
  t.match(withCas?.cas, /^\d+$/, 'with its cas')
  // a blocked reader is handed the item as it is written
  c.send('get fr/t=5000\r\n')
  await new Promise((r) => setTimeout(r, 200))
  const d = payload(3, 2048)
  p.send(setCmd('fr', 99, d))
  t.equal(await p.line(), 'STORED')
  const woke = await reply(c, 'fr/t=5000')
  t.same([woke?.flags, woke?.data], [99, d], 'blocked reader')
})

t.test('binary GET and GETK from memory and from disk: value, flags, key and cas intact', async (t) => {
  const server = await serverFor(t, { config: { max_memory_size: '64KB' } })
  const b = await BinaryClient.connect(server.port)
  t.teardown(() => b.close())
  const N = 120
  const items = Array.from({ length: N }, (_, i) => ({ flags: FLAGS[i % FLAGS.length]!, data: payload(i, [0, 1, 300, 1024, 3000][i % 5]!) }))
  b.send(Buffer.concat(items.map((it, i) => binSet('bframe', it.data, { flags: it.flags, opaque: i }))))
  for (let i = 0; i < N; i++) t.equal((await b.response(20_000)).status, 0)
  b.send(Buffer.concat(items.map((_, i) => binGet('bframe', i % 2 ? op.GETK : op.GET, i))))
  let bad = 0
  const cas = new Set<bigint>()
  for (let i = 0; i < N; i++) {
    const r = await b.response(20_000)
    const ok =
      r.status === 0 && r.opaque === i && r.opcode === (i % 2 ? op.GETK : op.GET) && r.key === (i % 2 ? 'bframe' : '') &&
      r.extras.readUInt32BE(0) === items[i]!.flags && r.value.equals(items[i]!.data) && r.cas > 0n
    if (!ok) bad++
    cas.add(r.cas)
  }
  t.equal(bad, 0, `${N} replies intact, in order`)
  t.equal(cas.size, N, 'each with its own cas')
  t.equal((await b.request(binGet('bframe', op.GET, 999))).status, 1, 'then KEY_ENOENT')
})
