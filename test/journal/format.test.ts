import t from 'tap'
import { crc32 } from 'node:zlib'
import { mkdirSync, readdirSync, writeFileSync, existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import {
  addRecordSize,
  checkRecord,
  crc32Span,
  decodeHeader,
  decodeQueueName,
  decodeRecord,
  encodeAdd,
  encodeHeader,
  encodeQueueName,
  encodeRemove,
  FLAG_RESET,
  queueFileName,
  readU64,
  REMOVE_RECORD_SIZE,
  writeU64,
} from '../../src/server/journal/format.js'
import { journalFactory } from '../../src/server/journal/index.js'
import { addDurable, item, open, tempSpool } from '../helpers/journal.js'

t.test('CRC: the JS fast path equals zlib.crc32 at every length and alignment', async (t) => {
  const buf = Buffer.alloc(2000)
  for (let i = 0; i < buf.length; i++) buf[i] = (i * 131 + 7) & 0xff
  let bad = 0
  for (const start of [0, 1, 3, 7]) {
    for (let len = 0; len <= 600; len++) {
      if (crc32Span(buf, start, start + len, 12345) !== crc32(buf.subarray(start, start + len), 12345)) bad++
    }
  }
  t.equal(bad, 0)
})

t.test('u64 round trip', async (t) => {
  const b = Buffer.alloc(8)
  for (const v of [0, 1, 0xffffffff, 0x100000000, 2 ** 40 + 5, Number.MAX_SAFE_INTEGER]) {
    writeU64(b, 0, v)
    t.equal(readU64(b, 0), v)
  }
})

t.test('ADD and REMOVE records encode and decode', async (t) => {
  const data = Buffer.from('hello\r\nworld\x00\xff', 'latin1')
  const it = { seq: 2 ** 33 + 17, flags: 0xdeadbeef, expiresAt: 1_800_000_000_123, addedAt: 1_700_000_000_456, data }
  const buf = Buffer.alloc(addRecordSize(data.length) + REMOVE_RECORD_SIZE)
  const mid = encodeAdd(buf, 0, it)
  t.equal(mid, addRecordSize(data.length))
  t.equal(encodeRemove(buf, mid, 99), buf.length)
  t.equal(checkRecord(buf, 0, buf.length), mid)
  t.equal(checkRecord(buf, mid, buf.length), REMOVE_RECORD_SIZE)
  const a = decodeRecord(buf, 0)
  t.same(a, { op: 'add', item: it, size: mid })
  t.same(decodeRecord(buf, mid), { op: 'remove', seq: 99, size: REMOVE_RECORD_SIZE })
  // the CRC covers length + opcode + body, as zlib computes it
  const covered = Buffer.concat([buf.subarray(0, 4), buf.subarray(8, mid)])
  t.equal(buf.readUInt32LE(4), crc32(covered))
  // any flipped bit is caught
  let caught = 0
  for (let i = 0; i < mid; i++) {
    const copy = Buffer.from(buf)
    copy[i]! ^= 0x10
    if (checkRecord(copy, 0, buf.length) !== mid) caught++
  }
  t.equal(caught, mid)
  // cut anywhere: incomplete
  for (let cut = 0; cut < mid; cut++) t.not(checkRecord(buf, 0, cut), mid)
  // empty data is fine
  const e = Buffer.alloc(addRecordSize(0))
  encodeAdd(e, 0, { ...it, data: Buffer.alloc(0) })
  t.equal(checkRecord(e, 0, e.length), e.length)
})

t.test('segment header round trip and damage', async (t) => {
  const h = { flags: FLAG_RESET, segno: 42, baseSeq: 1234567, importFingerprint: 0xabcdef01, importSize: 77, queue: 'a+b/\xff' }
  const buf = encodeHeader(h)
  const d = decodeHeader(buf)
  t.match(d, { ...h, version: 1, length: buf.length })
  t.equal(decodeHeader(buf.subarray(0, 10)), 'short')
  const bad = Buffer.from(buf)
  bad[20]! ^= 1
  t.equal(decodeHeader(bad), 'crc')
  const magic = Buffer.from(buf)
  magic[0] = 0
  t.equal(decodeHeader(magic), 'magic')
  const ver = Buffer.from(buf)
  ver.writeUInt16LE(9, 4)
  t.equal(decodeHeader(ver), 'version')
})

t.test('queue names: encoding is safe and reversible', async (t) => {
  const names = ['jobs', 'A', 'a', 'Jobs', 'jobs', '../x', '/etc/passwd', 'a/b', 'a.b', '..', '.', 'parent+child', 'sp ace', '%41', 'x%2Fy', '~', '\x00\x7f\xff', 'Ä']
  const seen = new Map<string, string>()
  for (const n of names) {
    const e = encodeQueueName(n)
    t.match(e, /^[a-z0-9_%A-F-]*$/, `${JSON.stringify(n)} -> ${e}`)
    t.notOk(e.includes('/') || e.includes('.'), 'no separators, no dots')
    t.equal(decodeQueueName(e), n, 'decodes back')
    const folded = e.toLowerCase()
    if (seen.has(folded) && seen.get(folded) !== n) t.fail(`case-folded collision: ${n} vs ${seen.get(folded)}`)
    seen.set(folded, n)
  }
  t.equal(encodeQueueName('A'), '%41')
  t.equal(encodeQueueName('../x'), '%2E%2E%2Fx')
  t.equal(decodeQueueName('%61'), undefined, 'non-canonical escapes are not ours')
  t.equal(decodeQueueName('%2f'), undefined, 'lower-case hex is not ours')
  t.equal(decodeQueueName('a.b'), undefined)
  t.throws(() => encodeQueueName('\u0100'))
  // files stay in the directory: the resolved path's parent is the spool
  for (const n of names) t.equal(resolve('/spool', queueFileName(n)).startsWith('/spool/'), true)
})

t.test('long names are hashed, stay unique and under the file name limit', async (t) => {
  const a = 'X'.repeat(250)
  const b = 'X'.repeat(249) + 'Y'
  const c = '/'.repeat(250)
  for (const n of [a, b, c]) t.ok(queueFileName(n).length < 255, `${queueFileName(n).length} chars`)
  t.not(encodeQueueName(a), encodeQueueName(b))
  t.ok(encodeQueueName(a).includes('~'))
  t.equal(encodeQueueName('x'.repeat(180)), 'x'.repeat(180), 'up to 180 chars kept plain')
})

t.test('journals of look-alike names never share files; listQueues gives the names back', async (t) => {
  const dir = tempSpool(t)
  const names = ['a', 'A', '../a', '/etc/a', 'a/b', 'a.b', 'parent+child', '%61', 'Z'.repeat(250), 'Z'.repeat(249) + 'z', 'x\x00y']
  for (const [k, q] of names.entries()) {
    const { journal } = await open(dir, { queue: q })
    journal.add(item(1, `payload of ${k}`), () => {}, () => {})
    await journal.close()
  }
  t.same(await journalFactory.listQueues(dir), [...names].sort())
  t.equal(readdirSync(dir).length, names.length, 'one file each, all inside the spool')
  t.notOk(existsSync(join(dir, '..', 'a.1.sqj')))
  for (const [k, q] of names.entries()) {
    const { journal, replay } = await open(dir, { queue: q })
    t.equal(replay.items.length, 1)
    t.equal(replay.items[0]!.data.toString(), `payload of ${k}`, `queue ${JSON.stringify(q).slice(0, 20)} got its own item`)
    await journal.close()
  }
})

t.test('listQueues ignores foreign files and subdirectories', async (t) => {
  const dir = tempSpool(t)
  writeFileSync(join(dir, 'README'), 'x')
  writeFileSync(join(dir, '.gitkeep'), '')
  writeFileSync(join(dir, 'UPPER.1.sqj'), 'not ours: upper case outside an escape')
  mkdirSync(join(dir, 'sub.1.sqj.d'))
  const { journal } = await open(dir, { queue: 'real' })
  await addDurable(journal, item(1))
  await journal.close()
  t.same(await journalFactory.listQueues(dir), ['real'])
  t.same(await journalFactory.listQueues(join(dir, 'missing')), [])
})
