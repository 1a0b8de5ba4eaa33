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
