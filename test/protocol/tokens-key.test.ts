/**
 * Tokens.key: a key token's string, the last one's again when the bytes match; a key of the same
 * length with other bytes, or any other key, gets its own string, byte for byte (latin1).
 */
import t from 'tap'
import { Tokens } from '../../src/server/protocol/text/tokens.js'
import { parseCommand } from '../../src/server/protocol/text/parser.js'

const LIMITS = { maxItemSize: 1 << 20, maxKeyLength: 250, maxLineLength: 2048 }

t.test('the same bytes give the same string; other bytes their own, exact', async (t) => {
  const tokens = new Tokens()
  const key = (line: string): string => {
    const buf = Buffer.from(line, 'latin1')
    tokens.split(buf, 0, buf.length)
    return tokens.key(1)
  }
  const a = key('get abc')
  t.equal(a, 'abc')
  t.equal(key('get abc'), a)
  t.equal(key('get abd'), 'abd', 'same length, last byte differs')
  t.equal(key('get xbd'), 'xbd', 'same length, first byte differs')
  t.equal(key('get abcd'), 'abcd', 'longer')
  t.equal(key('get ab'), 'ab', 'shorter')
  t.equal(key('get q\u00e9\u00ff/t=5'), 'q\u00e9\u00ff/t=5', 'latin1 bytes round-trip')
  t.equal(key('get q\u00e9\u00ff/t=6'), 'q\u00e9\u00ff/t=6')
})

t.test('the parser: a run of sets and gets on alternating keys gets each key right', async (t) => {
  const keys = ['q1', 'q2', 'q2', 'q1', 'qq', 'q1', 'a/open', 'a/close', 'a/close']
  for (const k of keys) {
    const get = Buffer.from(`get ${k}\r\n`)
    const r = parseCommand(get, 0, get.length, LIMITS)
    t.same(r.kind === 'command' && r.command.type === 'get' ? r.command.keys : null, [k])
    const set = Buffer.from(`set ${k.replace('/', '_')} 0 0 2\r\nhi\r\n`)
    const s = parseCommand(set, 0, set.length, LIMITS)
    t.equal(s.kind === 'command' && s.command.type === 'set' ? s.command.key : null, k.replace('/', '_'))
  }
})

t.test('parseQueueKey: the last plain key is reused only while it is still valid', async (t) => {
  const { parseQueueKey } = await import('../../src/server/protocol/keyOptions.js')
  const a = parseQueueKey('jobs', 250)
  t.same(a, { queue: 'jobs', options: { timeoutMs: 0, open: false, close: false, abort: false, peek: false } })
  t.equal(parseQueueKey('jobs', 250), a, 'the same key again: the same parsed key')
  t.throws(() => parseQueueKey('jobs', 3), { code: 'BAD_KEY' }, 'a lower max key length still refuses it')
  t.throws(() => parseQueueKey('', 250), { code: 'BAD_KEY' }, 'an empty key is refused')
  t.equal(parseQueueKey('jobs/open', 250).options.open, true, 'options are parsed, not taken from the plain key')
  t.equal(parseQueueKey('jobs/open', 250).queue, 'jobs')
  t.equal(parseQueueKey('jobs', 250).options.open, false)
  t.ok(Object.isFrozen(parseQueueKey('jobs', 250)), 'shared, so frozen')
})
