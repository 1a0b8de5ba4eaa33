import t from 'tap'
import { checkQueueName, encodeSet, getKey, ReplyParser, type ReplyEvent } from '../../src/client/protocol.js'

function parseAll(chunks: Buffer[]): ReplyEvent[] {
  const parser = new ReplyParser()
  const events: ReplyEvent[] = []
  for (const c of chunks) parser.feed(c, (e) => events.push({ ...e, ...(e.kind === 'value' ? { data: Buffer.from(e.data) } : {}) } as ReplyEvent))
  t.equal(parser.buffered, 0, 'nothing left over')
  return events
}

const stream = Buffer.concat([
  Buffer.from('STORED\r\nVALUE work 1246973774 7\r\n{"a":1}\r\nEND\r\n', 'latin1'),
  Buffer.from('VALUE bin 0 4\r\n', 'latin1'),
  Buffer.from([0x0d, 0x0a, 0x00, 0xff]), // data that contains CRLF
  Buffer.from('\r\nEND\r\nSTAT pid 42\r\nSTAT version 0.1.0\r\nEND\r\nSERVER_ERROR queue full\r\n', 'latin1'),
])

t.test('reply stream split at every byte boundary gives the same events', async (t) => {
  const whole = parseAll([stream])
  t.same(
    whole.map((e) => (e.kind === 'line' ? e.line : `VALUE ${e.key} ${e.flags} ${e.data.toString('hex')}`)),
    ['STORED', 'VALUE work 1246973774 7b2261223a317d', 'END', 'VALUE bin 0 0d0a00ff', 'END', 'STAT pid 42', 'STAT version 0.1.0', 'END', 'SERVER_ERROR queue full'],
  )
  for (let i = 1; i < stream.length; i++) {
    t.same(parseAll([stream.subarray(0, i), stream.subarray(i)]), whole, `split at ${i}`)
  }
  // one byte at a time
  t.same(parseAll(Array.from(stream, (b) => Buffer.from([b]))), whole)
})

t.test('garbage is a protocol error', async (t) => {
  t.throws(() => new ReplyParser().feed(Buffer.from('VALUE x 0 3\r\nabcXY'), () => {}), { code: 'PROTOCOL' })
  t.throws(() => new ReplyParser().feed(Buffer.from('VALUE x zero 3\r\n'), () => {}), { code: 'PROTOCOL' })
  t.throws(() => new ReplyParser().feed(Buffer.from('END\n'), () => {}), { code: 'PROTOCOL' })
  t.throws(() => new ReplyParser().feed(Buffer.alloc(70_000, 0x41), () => {}), { code: 'PROTOCOL' })
})

t.test('encodeSet writes header, data and CRLF', async (t) => {
  t.equal(encodeSet('q', 5, 60, Buffer.from('hi')).toString('latin1'), 'set q 5 60 2\r\nhi\r\n')
  t.equal(encodeSet('dé', 0, 0, Buffer.from('é')).toString('utf8'), 'set dé 0 0 2\r\né\r\n')
})

t.test('getKey orders Kestrel options', async (t) => {
  t.equal(getKey('q'), 'q')
  t.equal(getKey('q', { open: true, waitMs: 500 }), 'q/open/t=500')
  t.equal(getKey('q', { close: true, open: true }), 'q/close/open')
  t.equal(getKey('q', { abort: true }), 'q/abort')
  t.equal(getKey('q', { peek: true }), 'q/peek')
  t.equal(getKey('q', { waitMs: 0.2 }), 'q/t=1')
})

t.test('queue names follow memcached key rules, minus /', async (t) => {
  checkQueueName('jobs')
  checkQueueName('changes+search')
  checkQueueName('x'.repeat(250))
  for (const bad of ['', 'a b', 'a/b', 'a\nb', 'x'.repeat(251), 'é'.repeat(126)]) {
    t.throws(() => checkQueueName(bad), { code: 'BAD_KEY' }, JSON.stringify(bad).slice(0, 20))
  }
})
