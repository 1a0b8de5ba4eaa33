/**
 * Meta commands (ms/mg/md/mn/me) through TextHandler over a real socket, with the in-memory
 * Session double: replies byte for byte, return flags in request order, quiet mode, opaque and key
 * echo, base64 keys, Kestrel key options in mg, refusals and flag errors keeping the stream in step.
 */
import t, { type Test } from 'tap'
import type { RawClient } from '../helpers/textClient.js'
import { textServerWithClient } from '../helpers/textSession.js'

/** Send, then read exactly the expected bytes and compare. */
async function exchange(t: Test, c: RawClient, send: string, expected: string, message?: string): Promise<void> {
  c.send(send)
  t.equal((await c.bytes(expected.length)).toString('latin1'), expected, message ?? JSON.stringify(send))
}

t.test('ms then mg: HD, VA with value, EN when empty', async (t) => {
  const { client: c } = await textServerWithClient(t)
  await exchange(t, c, 'ms q 5\r\nhello\r\n', 'HD\r\n')
  await exchange(t, c, 'mg q v\r\n', 'VA 5\r\nhello\r\n')
  await exchange(t, c, 'mg q v\r\n', 'EN\r\n')
  await exchange(t, c, 'ms q 0\r\n\r\n', 'HD\r\n', 'empty item')
  await exchange(t, c, 'mg q v s\r\n', 'VA 0 s0\r\n\r\n')
})

t.test('mg return flags in request order: f s t c k O; t is -1 without expiry', async (t) => {
  const { client: c } = await textServerWithClient(t)
  await exchange(t, c, 'ms q 2 F77\r\nhi\r\n', 'HD\r\n')
  c.send('mg q t k O99 f s v c\r\n')
  t.match(await c.line(), /^VA 2 t-1 kq O99 f77 s2 c[1-9]\d*$/)
  t.equal(await c.line(), 'hi')
  await exchange(t, c, 'ms q 1 T100 F1\r\nx\r\n', 'HD\r\n')
  c.send('mg q v t\r\n')
  t.match(await c.line(), /^VA 1 t(99|100)$/)
  t.equal(await c.line(), 'x')
})

t.test('mg without v dequeues and answers HD with the flags', async (t) => {
  const { client: c } = await textServerWithClient(t)
  await exchange(t, c, 'ms q 3 F5\r\nabc\r\n', 'HD\r\n')
  await exchange(t, c, 'mg q f s\r\n', 'HD f5 s3\r\n')
  await exchange(t, c, 'mg q\r\n', 'EN\r\n', 'the item was taken')
  await exchange(t, c, 'ms q 1\r\nz\r\n', 'HD\r\n')
  await exchange(t, c, 'mg q\r\n', 'HD\r\n')
})

t.test('quiet mode: mg hides EN, ms and md hide HD; errors and values are never hidden; mn closes a batch', async (t) => {
  const { client: c } = await textServerWithClient(t)
  await exchange(t, c, 'ms a 1 q\r\nx\r\nms b 1 q\r\ny\r\nmg none v q\r\nmg a v q\r\nmd b q\r\nmd none q\r\nmn\r\n', 'VA 1\r\nx\r\nNF\r\nMN\r\n')
  await exchange(t, c, 'ms full 1 q\r\nx\r\nmn\r\n', 'SERVER_ERROR queue full\r\nMN\r\n')
  await exchange(t, c, 'mg b v\r\n', 'EN\r\n', 'md deleted b')
})

t.test('opaque and key echo on every reply kind', async (t) => {
  const { client: c } = await textServerWithClient(t)
  await exchange(t, c, 'ms q 1 O1 k\r\nx\r\n', 'HD O1 kq\r\n')
  await exchange(t, c, 'mg q k O2 v\r\n', 'VA 1 kq O2\r\nx\r\n')
  await exchange(t, c, 'mg q k O3 v f\r\n', 'EN kq O3\r\n')
  await exchange(t, c, 'md q O4 k\r\n', 'HD O4 kq\r\n')
  await exchange(t, c, 'md q O5 k\r\n', 'NF O5 kq\r\n')
  await exchange(t, c, 'ms q 1 ME O6 k\r\nx\r\n', 'NS O6 kq\r\n')
})

t.test('ms modes other than set are NS after the data block; MS is a plain set', async (t) => {
  const { client: c } = await textServerWithClient(t)
  for (const mode of ['ME', 'MA', 'MP', 'MR', 'Me']) await exchange(t, c, `ms q 2 ${mode}\r\nab\r\n`, 'NS\r\n', mode)
  await exchange(t, c, 'mg q v\r\n', 'EN\r\n', 'nothing stored')
  await exchange(t, c, 'ms q 2 MS\r\nab\r\nmg q v\r\n', 'HD\r\nVA 2\r\nab\r\n')
})

t.test('base64 keys: decoded for the queue, echoed as sent with b', async (t) => {
  const { client: c, server } = await textServerWithClient(t)
  const key = Buffer.from('bin\x00key', 'latin1').toString('base64') // a NUL byte: invalid as a plain key
  await exchange(t, c, `ms ${Buffer.from('jobs').toString('base64')} 2 b k\r\nhi\r\n`, 'HD kam9icw== b\r\n')
  t.ok(server.store.queues.has('jobs'))
  await exchange(t, c, 'mg am9icw== b v k\r\n', 'VA 2 kam9icw== b\r\nhi\r\n')
  await exchange(t, c, `ms ${key} 1 b\r\nx\r\n`, 'CLIENT_ERROR bad character in key\r\n')
  await exchange(t, c, 'mg @@@@ b v\r\n', 'CLIENT_ERROR error decoding key\r\n')
})

t.test('Kestrel options in mg keys; options refused on ms and md', async (t) => {
  const { client: c, connect } = await textServerWithClient(t)
  await exchange(t, c, 'ms r 3\r\none\r\nms r 3\r\ntwo\r\n', 'HD\r\nHD\r\n')
  await exchange(t, c, 'mg r/peek v k\r\n', 'VA 3 kr/peek\r\none\r\n')
  await exchange(t, c, 'mg r/open v\r\n', 'VA 3\r\none\r\n')
  await exchange(t, c, 'mg r/open v\r\n', 'CLIENT_ERROR open read already pending\r\n')
  await exchange(t, c, 'mg r/abort\r\n', 'EN\r\n')
  await exchange(t, c, 'mg r/close/open v\r\n', 'VA 3\r\none\r\n')
  await exchange(t, c, 'mg r/close v\r\n', 'EN\r\n')
  await exchange(t, c, 'mg r/bogus v\r\n', 'CLIENT_ERROR unknown option bogus\r\n')
  await exchange(t, c, 'ms r/open 1\r\nx\r\n', 'CLIENT_ERROR options are not allowed on set\r\n')
  await exchange(t, c, 'md r/open\r\n', 'CLIENT_ERROR options are not allowed on md\r\n')
  // blocking mg: served by a set from another connection
  c.send('mg w/t=2000 v\r\nmn\r\n')
  await new Promise((r) => setTimeout(r, 80))
  const producer = await connect()
  await exchange(t, producer, 'ms w 4\r\njob1\r\n', 'HD\r\n')
  t.equal((await c.bytes('VA 4\r\njob1\r\nMN\r\n'.length)).toString('latin1'), 'VA 4\r\njob1\r\nMN\r\n')
})

t.test('mn, me, ma', async (t) => {
  const { client: c } = await textServerWithClient(t)
  await exchange(t, c, 'mn\r\n', 'MN\r\n')
  await exchange(t, c, 'me q\r\n', 'EN\r\n')
  await exchange(t, c, 'ma q\r\n', 'CLIENT_ERROR ma is not supported by a queue server\r\n')
})

t.test('flag errors: bad flag, duplicate, bad tokens; ms errors skip the data block', async (t) => {
  const { client: c } = await textServerWithClient(t)
  await exchange(t, c, 'mg q x\r\n', 'CLIENT_ERROR bad flag\r\n')
  await exchange(t, c, 'mg q N30 v\r\n', 'CLIENT_ERROR bad flag\r\n')
  await exchange(t, c, 'md q v\r\n', 'CLIENT_ERROR bad flag\r\n')
  await exchange(t, c, 'mg q v v\r\n', 'CLIENT_ERROR duplicate flag\r\n')
  await exchange(t, c, 'ms q 5 I\r\nhello\r\nmn\r\n', 'CLIENT_ERROR bad flag\r\nMN\r\n')
  await exchange(t, c, 'ms q 5 Fabc\r\nhello\r\nmn\r\n', 'CLIENT_ERROR bad token in command line format\r\nMN\r\n')
  await exchange(t, c, 'ms q 5 Tx\r\nhello\r\nmn\r\n', 'CLIENT_ERROR bad token in command line format\r\nMN\r\n')
  await exchange(t, c, 'ms q 5 MZ\r\nhello\r\nmn\r\n', 'CLIENT_ERROR invalid mode for ms M token\r\nMN\r\n')
  await exchange(t, c, 'ms q five\r\nmn\r\n', 'CLIENT_ERROR bad command line format\r\nMN\r\n')
  await exchange(t, c, 'ms q\r\nmn\r\n', 'CLIENT_ERROR bad command line format\r\nMN\r\n')
  await exchange(t, c, 'mg\r\n', 'CLIENT_ERROR bad command line format\r\n')
  await exchange(t, c, `mg ${'k'.repeat(251)} v\r\n`, 'CLIENT_ERROR key too long\r\n')
  await exchange(t, c, 'mg q v\r\n', 'EN\r\n', 'nothing was stored by the refused sets')
})

t.test('ms framing: too large discarded, bad data chunk resyncs', async (t) => {
  const { client: c } = await textServerWithClient(t, { limits: { maxItemSize: 100 } })
  c.send(`ms q 500 T0\r\n${'x'.repeat(500)}\r\nmn\r\n`)
  t.equal((await c.bytes('SERVER_ERROR object too large for cache\r\nMN\r\n'.length)).toString('latin1'), 'SERVER_ERROR object too large for cache\r\nMN\r\n')
  await exchange(t, c, 'ms q 2\r\nabcd\r\nmn\r\n', 'CLIENT_ERROR bad data chunk\r\nMN\r\n')
  await exchange(t, c, 'ms q 2 q\r\nab\r\nmg q v\r\n', 'VA 2\r\nab\r\n')
})

t.test('errors from the layer below', async (t) => {
  const { client: c } = await textServerWithClient(t)
  await exchange(t, c, 'ms full 1\r\nx\r\n', 'SERVER_ERROR queue full\r\n')
  await exchange(t, c, 'ms broken 1 q\r\nx\r\n', 'SERVER_ERROR disk on fire\r\n')
  await exchange(t, c, 'mg broken v q\r\n', 'SERVER_ERROR disk on fire\r\n')
})

t.test('meta commands need auth like the rest', async (t) => {
  const { client: c } = await textServerWithClient(t, { session: { authRequired: true } })
  await exchange(t, c, 'mg q v\r\n', 'CLIENT_ERROR unauthenticated\r\n')
  await exchange(t, c, 'ms q 2\r\nhi\r\nmn\r\n', 'CLIENT_ERROR unauthenticated\r\nCLIENT_ERROR unauthenticated\r\n')
  await exchange(t, c, 'set x 0 0 12\r\nalice secret\r\n', 'STORED\r\n')
  await exchange(t, c, 'ms q 2\r\nhi\r\nmg q v\r\nmn\r\n', 'HD\r\nVA 2\r\nhi\r\nMN\r\n')
})

t.test('text and meta mix on one connection', async (t) => {
  const { client: c } = await textServerWithClient(t)
  await exchange(t, c, 'set q 3 0 1\r\na\r\nms q 1 F4\r\nb\r\nmg q v f\r\nget q\r\nmn\r\n', 'STORED\r\nHD\r\nVA 1 f3\r\na\r\nVALUE q 4 1\r\nb\r\nEND\r\nMN\r\n')
})
