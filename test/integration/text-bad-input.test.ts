/**
 * Bad input against the REAL server process: every case gets the memcached reply it should, and
 * after each one the server is alive (a fresh connection can set/get), the sentinel queue is
 * untouched, and nothing was created outside the spool directory.
 */
import t from 'tap'
import { existsSync, mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { startServer, removeDir, tempDir, type RunningServer } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'

const SENTINEL = ['s1', 's2', 's3']

interface BadCase {
  name: string
  /** Bytes to send (one write), or several writes. */
  send: string | Buffer | Array<string | Buffer>
  /** Reply lines expected, in order. */
  expect: string[]
  /** The server closes the connection after the replies. */
  closes?: boolean
  /** Close our side without reading (half-sent commands). */
  disconnect?: boolean
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1')
const BAD = 'CLIENT_ERROR bad command line format'
/** Replaced by the server's real `VERSION <v>` line at run time. */
const VERSION = 'VERSION <server version>'

const CASES: BadCase[] = [
  // malformed headers
  { name: 'set missing length', send: 'set q 0 0\r\n', expect: [BAD] },
  { name: 'set missing everything', send: 'set\r\n', expect: [BAD] },
  { name: 'negative length', send: 'set q 0 0 -1\r\nversion\r\n', expect: [BAD, VERSION] },
  { name: 'non-numeric length', send: 'set q 0 0 abc\r\nversion\r\n', expect: [BAD, VERSION] },
  { name: 'length with junk', send: 'set q 0 0 3z\r\nversion\r\n', expect: [BAD, VERSION] },
  { name: 'absurd length', send: 'set q 0 0 999999999999999999999\r\nversion\r\n', expect: [BAD, VERSION] },
  { name: 'non-numeric flags (data skipped)', send: 'set q abc 0 1\r\nx\r\nversion\r\n', expect: [BAD, VERSION] },
  { name: 'flags over 32 bits (data skipped)', send: 'set q 4294967296 0 1\r\nx\r\nversion\r\n', expect: [BAD, VERSION] },
  { name: 'non-numeric exptime (data skipped)', send: 'set q 0 soon 1\r\nx\r\nversion\r\n', expect: [BAD, VERSION] },
  { name: 'too many tokens', send: 'set q 0 0 1 noreply extra\r\nversion\r\n', expect: [BAD, VERSION] },
  { name: 'get without key', send: 'get\r\n', expect: [BAD] },
  { name: 'delete with a time', send: 'delete q 10\r\n', expect: [BAD] },
  { name: 'verbosity not a number', send: 'verbosity loud\r\n', expect: [BAD] },
  // data block length disagreements
  { name: 'data longer than declared', send: 'set q 0 0 3\r\nabcdef\r\nget q\r\n', expect: ['CLIENT_ERROR bad data chunk', 'END'] },
  {
    name: 'data shorter than declared',
    send: ['set q 0 0 10\r\nabc\r\n', '0123456789\r\nget q\r\n'],
    expect: ['CLIENT_ERROR bad data chunk', 'END'],
  },
  { name: 'no CRLF after data', send: 'set q 0 0 3\r\nabcXYget q\r\nversion\r\n', expect: ['CLIENT_ERROR bad data chunk', VERSION] },
  { name: 'bare LF after data', send: 'set q 0 0 3\r\nabc\nversion\r\n', expect: ['CLIENT_ERROR bad data chunk', VERSION] },
  // keys
  { name: 'control byte in key', send: 'set a\x01b 0 0 1\r\nx\r\n', expect: ['CLIENT_ERROR bad character in key'] },
  { name: 'NUL in key', send: b('get a\x00b\r\n'), expect: ['CLIENT_ERROR bad character in key'] },
  { name: 'DEL in key', send: 'get a\x7fb\r\n', expect: ['CLIENT_ERROR bad character in key'] },
  { name: 'tab in key', send: 'set a\tb 0 0 1\r\nx\r\n', expect: ['CLIENT_ERROR bad character in key'] },
  { name: 'space in key shifts fields', send: 'set a b 0 0 1\r\nx\r\nversion\r\n', expect: [BAD, 'ERROR', VERSION] },
  { name: '251-byte key on set', send: `set ${'k'.repeat(251)} 0 0 1\r\nx\r\n`, expect: ['CLIENT_ERROR key too long'] },
  { name: '251-byte key on get', send: `get ${'k'.repeat(251)}\r\n`, expect: ['CLIENT_ERROR key too long'] },
  // path traversal: options are refused on set; on get the part after / must be an option
  { name: 'set ../x', send: 'set ../x 0 0 1\r\nx\r\n', expect: ['CLIENT_ERROR options are not allowed on set'] },
  { name: 'set /etc/x', send: 'set /etc/x 0 0 1\r\nx\r\n', expect: ['CLIENT_ERROR options are not allowed on set'] },
  { name: 'set a/b', send: 'set a/b 0 0 1\r\nx\r\n', expect: ['CLIENT_ERROR options are not allowed on set'] },
  { name: 'get ../x', send: 'get ../x\r\n', expect: ['CLIENT_ERROR unknown option x'] },
  { name: 'get /etc/x', send: 'get /etc/x\r\n', expect: ['CLIENT_ERROR empty queue name'] },
  { name: 'delete ../x', send: 'delete ../x\r\n', expect: ['CLIENT_ERROR options are not allowed on delete'] },
  { name: 'ms ../x', send: 'ms ../x 1\r\nx\r\n', expect: ['CLIENT_ERROR options are not allowed on set'] },
  // names that are legal keys but look like paths: stored inside the spool, served back
  { name: 'queue named ..', send: 'set .. 0 0 2\r\ndd\r\nget ..\r\n', expect: ['STORED', 'VALUE .. 0 2', 'dd', 'END'] },
  { name: 'queue named .', send: 'set . 0 0 1\r\nd\r\nget .\r\n', expect: ['STORED', 'VALUE . 0 1', 'd', 'END'] },
  { name: 'queue named %2e%2e%2fx', send: 'set %2e%2e%2fx 0 0 1\r\nd\r\nget %2e%2e%2fx\r\n', expect: ['STORED', 'VALUE %2e%2e%2fx 0 1', 'd', 'END'] },
  { name: 'queue named ..\\x', send: 'set ..\\x 0 0 1\r\nd\r\nget ..\\x\r\n', expect: ['STORED', 'VALUE ..\\x 0 1', 'd', 'END'] },
  // bad options
  { name: 'bad timeout', send: 'get q/t=abc\r\n', expect: ['CLIENT_ERROR bad timeout t=abc'] },
  { name: 'timeout too many digits', send: 'get q/t=99999999999\r\n', expect: ['CLIENT_ERROR bad timeout t=99999999999'] },
  { name: 'contradictory options', send: 'get q/open/peek\r\n', expect: ['CLIENT_ERROR peek cannot be combined with open, close or abort'] },
  // unsupported commands with data blocks, then a valid command: the stream stays in step
  { name: 'add + data then get', send: 'add q 0 0 5\r\nhello\r\nget q\r\n', expect: ['CLIENT_ERROR add is not supported by a queue server', 'END'] },
  { name: 'replace + data then get', send: 'replace q 0 0 5\r\nhello\r\nget q\r\n', expect: ['CLIENT_ERROR replace is not supported by a queue server', 'END'] },
  { name: 'append + data then get', send: 'append q 0 0 5\r\nhello\r\nget q\r\n', expect: ['CLIENT_ERROR append is not supported by a queue server', 'END'] },
  { name: 'prepend + data then get', send: 'prepend q 0 0 5\r\nhello\r\nget q\r\n', expect: ['CLIENT_ERROR prepend is not supported by a queue server', 'END'] },
  { name: 'cas + data then get', send: 'cas q 0 0 5 1\r\nhello\r\nget q\r\n', expect: ['CLIENT_ERROR cas is not supported by a queue server', 'END'] },
  { name: 'data block that looks like a command', send: 'add q 0 0 15\r\ndelete sentinel\r\nversion\r\n', expect: ['CLIENT_ERROR add is not supported by a queue server', VERSION] },
  { name: 'incr', send: 'incr q 1\r\n', expect: ['CLIENT_ERROR incr is not supported by a queue server'] },
  { name: 'decr', send: 'decr q 1\r\n', expect: ['CLIENT_ERROR decr is not supported by a queue server'] },
  { name: 'touch', send: 'touch q 1\r\n', expect: ['CLIENT_ERROR touch is not supported by a queue server'] },
  { name: 'unknown command', send: 'frobnicate q\r\n', expect: ['ERROR'] },
  { name: 'empty line', send: '\r\n', expect: ['ERROR'] },
  { name: 'CRs only', send: '\r\r\r\n', expect: ['ERROR'] },
  // size limits
  {
    name: 'item over 1 MiB is discarded unread',
    send: [b('set q 0 0 2000000\r\n'), Buffer.alloc(2_000_000, 0x41), b('\r\nget q\r\n')],
    expect: ['SERVER_ERROR object too large for cache', 'END'],
  },
  { name: 'line of 2 MB without newline', send: Buffer.alloc(2 * 1024 * 1024, 0x61), expect: ['CLIENT_ERROR line too long'], closes: true },
  // meta
  { name: 'meta bad flag', send: 'mg q zz\r\n', expect: ['CLIENT_ERROR bad flag'] },
  { name: 'meta bad token skips data', send: 'ms q 5 Fx\r\nhello\r\nmn\r\n', expect: ['CLIENT_ERROR bad token in command line format', 'MN'] },
  { name: 'meta negative length', send: 'ms q -1\r\nmn\r\n', expect: [BAD, 'MN'] },
  // half-sent commands then disconnect
  { name: 'half a data block then disconnect', send: 'set q 0 0 10\r\nabc', expect: [], disconnect: true },
  { name: 'half a command line then disconnect', send: 'get sentin', expect: [], disconnect: true },
  { name: 'half a meta set then disconnect', send: 'ms q 5\r\nab', expect: [], disconnect: true },
  { name: 'blocking get then disconnect', send: 'get q/t=5000\r\n', expect: [], disconnect: true },
  { name: 'open read then disconnect', send: 'get sentinel/open\r\n', expect: ['VALUE sentinel/open 0 2', 's1', 'END'], disconnect: true },
]

async function writeAll(c: RawClient, parts: Array<string | Buffer>): Promise<void> {
  for (const part of parts) {
    c.send(part)
    await new Promise((r) => setTimeout(r, 20))
  }
}

async function queueItems(c: RawClient, queue: string): Promise<string | undefined> {
  const stats = await c.request('stats\r\n')
  return stats.find((l) => l.startsWith(`STAT queue_${queue}_items `))?.split(' ')[2]
}

t.test('bad input never crashes the server nor touches other data', async (t) => {
  const root = tempDir('starling-bad-input-')
  const spool = join(root, 'spool')
  mkdirSync(spool)
  /** Where a traversal through a queue name could land. */
  const outside = ['/etc/x', '/x', join(root, 'x'), join(root, 'a'), join(root, 'etc'), join(process.cwd(), 'x'), join(process.cwd(), 'etc')]
  for (const path of outside) t.notOk(existsSync(path), `precondition: ${path} does not exist`)
  let server: RunningServer = await startServer({ spool })
  t.teardown(async () => {
    await server.stop()
    removeDir(root)
  })

  const setup = await RawClient.connect(server.port)
  const [versionLine] = await setup.request('version\r\n')
  t.match(versionLine, /^VERSION \d+\.\d+\.\d+/)
  for (const item of SENTINEL) t.equal(await setup.set('sentinel', item), 'STORED')
  setup.close()

  for (const bad of CASES) {
    await t.test(bad.name, async (t) => {
      const c = await RawClient.connect(server.port)
      const parts = Array.isArray(bad.send) ? bad.send : [bad.send]
      await writeAll(c, parts)
      const got: string[] = []
      for (let i = 0; i < bad.expect.length; i++) got.push(await c.line(10_000))
      t.same(got, bad.expect.map((l) => (l === VERSION ? versionLine : l)), 'replies')
      if (bad.closes) {
        await c.waitClosed(10_000)
        t.ok(c.closed, 'server closed the connection')
      }
      c.close()
      if (bad.disconnect) await new Promise((r) => setTimeout(r, 50))

      // The server is alive: a fresh connection can set and get.
      const probe = await RawClient.connect(server.port)
      t.equal(await probe.set('probe', bad.name), 'STORED', 'alive: set')
      t.equal(await probe.get('probe'), bad.name, 'alive: get')
      // The sentinel queue is untouched (an aborted open read is back at the head).
      t.equal(await queueItems(probe, 'sentinel'), String(SENTINEL.length), 'sentinel item count')
      probe.send('get sentinel/peek\r\n')
      t.same([await probe.line(), await probe.line(), await probe.line()], ['VALUE sentinel/peek 0 2', 's1', 'END'], 'sentinel head')
      // Queue q never received anything from the refused commands.
      t.equal(await probe.get('q'), null, 'nothing stored in q')
      probe.close()
      // Nothing outside the spool directory.
      t.same(readdirSync(root), ['spool'], 'nothing next to the spool')
      for (const path of outside) t.notOk(existsSync(path), `${path} not created`)
    })
  }

  // Everything is still there after a restart: the sentinel and the path-like queues.
  t.equal(await server.stop(), 0)
  server = await startServer({ spool })
  const after = await RawClient.connect(server.port)
  t.equal(await after.get('sentinel'), 's1')
  t.equal(await after.get('..'), null, 'path-like queue was consumed, and stayed so')
  t.same(readdirSync(root), ['spool'])
  after.close()
})

t.test('a pipelined burst then a disconnect without reading', async (t) => {
  const server = await startServer()
  t.teardown(async () => {
    await server.stop()
    removeDir(server.spool)
  })
  const c = await RawClient.connect(server.port)
  c.send('get nothing\r\n'.repeat(20_000) + 'set burst 0 0 1\r\nx\r\n')
  c.close()
  await new Promise((r) => setTimeout(r, 300))
  const probe = await RawClient.connect(server.port)
  t.equal(await probe.set('alive', 'yes'), 'STORED')
  t.equal(await probe.get('alive'), 'yes')
  probe.close()
})

t.test('a blocking get whose connection drops does not swallow the next item', async (t) => {
  const server = await startServer()
  t.teardown(async () => {
    await server.stop()
    removeDir(server.spool)
  })
  const waiter = await RawClient.connect(server.port)
  waiter.send('get w/t=5000\r\n')
  await new Promise((r) => setTimeout(r, 100))
  waiter.close()
  await new Promise((r) => setTimeout(r, 100))
  const c = await RawClient.connect(server.port)
  t.equal(await c.set('w', 'kept'), 'STORED')
  t.equal(await c.get('w'), 'kept')
  c.close()
})
