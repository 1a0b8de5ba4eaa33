/**
 * Issue 13: plain TCP reads land in one buffer shared by every connection (reusedReads.ts). What a
 * command keeps past the read — commands held behind a blocking get, a partial frame, an item's
 * payload — must be copied out before another read overwrites that buffer. Here another connection
 * floods the server with large values while the held or partial commands wait, then every item is
 * read back byte for byte. Real server, real sockets; text, meta and binary.
 */
import t from 'tap'
import type { Socket } from 'node:net'
import { serverFor } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'
import { BinaryClient, get, op, set } from '../helpers/binary.js'
import { connectSocket } from '../helpers/socketReader.js'

/** Bytes that differ per item and per position (never 'Z', the flood's byte), so any overwrite shows. */
function payload(tag: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size)
  for (let i = 0; i < size; i++) b[i] = 0x21 + ((i * 7 + tag * 13) % 57) // '!'..'Y'
  return b
}

/**
 * Another connection writing 48 KiB values (noreply) for `ms`: each of its reads overwrites most of
 * the shared read buffer. Resolves with how many it sent.
 */
async function flood(port: number, ms: number): Promise<number> {
  const s: Socket = await connectSocket(port)
  s.on('error', () => {})
  const value = Buffer.alloc(48 * 1024, 'Z')
  const one = Buffer.concat([Buffer.from(`set flood 0 0 ${value.length} noreply\r\n`), value, Buffer.from('\r\n')])
  const until = Date.now() + ms
  let sent = 0
  while (Date.now() < until) {
    sent++
    if (!s.write(one)) await new Promise((r) => s.once('drain', r))
    await new Promise((r) => setTimeout(r, 4))
  }
  // A round trip: every flood write has been read before the socket closes.
  s.write('version\r\n')
  await new Promise((r) => s.once('data', r))
  s.destroy()
  return sent
}

const ITEMS = 12
const SIZE = 3000 // several items per read, so a read ends inside a frame

t.test('text: sets held behind a blocking get and a value split across reads survive a flood', async (t) => {
  const server = await serverFor(t)
  const c = await RawClient.connect(server.port)
  t.teardown(() => c.close())
  // One write: a blocking get (holds what follows), sets to queues not yet open, then a partial set.
  const parts: Buffer[] = [Buffer.from('get held/t=800\r\n')]
  for (let i = 0; i < ITEMS; i++) {
    parts.push(Buffer.from(`set tq${i} ${i} 0 ${SIZE}\r\n`), payload(i, SIZE), Buffer.from('\r\n'))
  }
  const last = payload(99, SIZE)
  parts.push(Buffer.from(`set tq_last 7 0 ${SIZE}\r\n`), last.subarray(0, 1000))
  c.send(Buffer.concat(parts))
  const flooded = flood(server.port, 1500)
  await new Promise((r) => setTimeout(r, 1200)) // the hold ends at ~800 ms, the flood goes on
  c.send(Buffer.concat([last.subarray(1000), Buffer.from('\r\n')]))
  t.equal(await c.line(10_000), 'END', 'the blocking get timed out empty')
  for (let i = 0; i <= ITEMS; i++) t.equal(await c.line(10_000), 'STORED', `set ${i} stored`)
  t.ok((await flooded) > 10, 'the flood overwrote the read buffer many times')

  for (let i = 0; i < ITEMS; i++) {
    c.send(`get tq${i}\r\n`)
    t.equal(await c.line(), `VALUE tq${i} ${i} ${SIZE}`)
    t.ok((await c.bytes(SIZE + 2)).equals(Buffer.concat([payload(i, SIZE), Buffer.from('\r\n')])), `item ${i} intact`)
    t.equal(await c.line(), 'END')
  }
  t.equal(await c.get('tq_last'), last.toString('latin1'), 'the value split across reads is intact')
})

t.test('meta: ms held behind a blocking mg survive a flood', async (t) => {
  const server = await serverFor(t)
  const c = await RawClient.connect(server.port)
  t.teardown(() => c.close())
  const parts: Buffer[] = [Buffer.from('mg mheld/t=800 v\r\n')]
  for (let i = 0; i < ITEMS; i++) parts.push(Buffer.from(`ms mq${i} ${SIZE} F${i}\r\n`), payload(i + 40, SIZE), Buffer.from('\r\n'))
  c.send(Buffer.concat(parts))
  const flooded = flood(server.port, 1500)
  t.equal(await c.line(10_000), 'EN', 'the blocking mg timed out empty')
  for (let i = 0; i < ITEMS; i++) t.equal(await c.line(10_000), 'HD', `ms ${i} stored`)
  t.ok((await flooded) > 10, 'the flood overwrote the read buffer many times')
  for (let i = 0; i < ITEMS; i++) {
    c.send(`mg mq${i} v f\r\n`)
    t.equal(await c.line(), `VA ${SIZE} f${i}`)
    t.ok((await c.bytes(SIZE + 2)).equals(Buffer.concat([payload(i + 40, SIZE), Buffer.from('\r\n')])), `item ${i} intact`)
  }
})

t.test('binary: SETs held behind a blocking GET and a frame split across reads survive a flood', async (t) => {
  const server = await serverFor(t)
  const b = await BinaryClient.connect(server.port)
  t.teardown(() => b.close())
  const frames: Buffer[] = [get('bheld/t=800', op.GET, 1000)]
  for (let i = 0; i < ITEMS; i++) frames.push(set(`bq${i}`, payload(i + 20, SIZE), { flags: i, opaque: i }))
  const last = set('bq_last', payload(77, SIZE), { flags: 5, opaque: 500 })
  frames.push(last.subarray(0, 1500))
  b.send(Buffer.concat(frames))
  const flooded = flood(server.port, 1500)
  await new Promise((r) => setTimeout(r, 1200))
  b.send(last.subarray(1500))
  const held = await b.response(10_000)
  t.equal(held.opaque, 1000, 'the blocking GET answers first')
  for (let i = 0; i < ITEMS; i++) {
    const r = await b.response(10_000)
    t.same([r.opaque, r.status], [i, 0], `SET ${i} stored`)
  }
  t.same((await b.response(10_000)).opaque, 500, 'the split SET stored')
  t.ok((await flooded) > 10, 'the flood overwrote the read buffer many times')

  for (let i = 0; i < ITEMS; i++) {
    const r = await b.request(get(`bq${i}`, op.GET, i))
    t.equal(r.status, 0)
    t.equal(r.extras.readUInt32BE(0), i, `flags ${i}`)
    t.ok(r.value.equals(payload(i + 20, SIZE)), `item ${i} intact`)
  }
  const r = await b.request(get('bq_last'))
  t.ok(r.value.equals(payload(77, SIZE)), 'the frame split across reads is intact')
})

t.test('a client hanging up while a blocking GET holds its input is noticed: the next item is not swallowed', async (t) => {
  // With onread, pausing stops reading; held connections keep reading (bounded) so EOF is seen.
  const server = await serverFor(t)
  const waiter = await BinaryClient.connect(server.port)
  waiter.send(Buffer.concat([get('bw/t=5000', op.GET, 1), get('bw', op.GET, 2)])) // the second is held
  await new Promise((r) => setTimeout(r, 200))
  waiter.close()
  await new Promise((r) => setTimeout(r, 300))
  const b = await BinaryClient.connect(server.port)
  t.teardown(() => b.close())
  t.equal((await b.request(set('bw', 'kept', { opaque: 3 }))).status, 0)
  const r = await b.request(get('bw', op.GET, 4))
  t.equal(r.value.toString(), 'kept', 'the item went to the live client, not the closed one')
})
