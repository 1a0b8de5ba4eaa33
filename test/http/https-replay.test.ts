/**
 * HTTPS with the certificate of `tls:` when `http.tls: true` (plain HTTP is then refused on that
 * port); and /healthz answers 503 while the spool is replayed, 200 once every queue is back (queue
 * routes answer 503 meanwhile).
 */
import t from 'tap'
import { execFileSync, spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { removeDir, SERVER_MAIN, serverFor, tempDir } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'
import { httpPortOf, request, type HttpTarget } from '../helpers/http.js'

function makeCert(): string {
  const dir = tempDir('starling-https-')
  const ext = join(dir, 'server.ext')
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1\n')
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' })
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=test-ca'])
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'])
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', ext])
  return dir
}

t.test('http.tls: HTTPS with the same certificate as the TLS port', async (t) => {
  const dir = makeCert()
  t.teardown(() => removeDir(dir))
  const s = await serverFor(t, {
    config: {
      tls: { port: 0, cert: join(dir, 'server.crt'), key: join(dir, 'server.key') },
      http: { port: 0, tls: true },
      auth: { users: { u: 'p' } },
    },
  })
  const h: HttpTarget = { port: httpPortOf(s), ca: readFileSync(join(dir, 'ca.crt')), auth: 'u:p' }
  t.equal((await request(h, '/queues/secure', { method: 'POST', body: 'over tls' })).status, 201)
  t.equal((await request(h, '/queues/secure')).text, 'over tls')
  t.equal((await request({ ...h, auth: undefined }, '/queues')).status, 401)
  t.equal((await request({ ...h, auth: undefined }, '/healthz')).status, 200)
  await t.rejects(request({ port: h.port, timeoutMs: 5000 }, '/healthz'), 'plain HTTP gets no HTTP reply on the HTTPS port')
})

async function freePort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  const port = (srv.address() as AddressInfo).port
  await new Promise((r) => srv.close(r))
  return port
}

t.test('healthz answers 503 while the spool replays, then 200', async (t) => {
  const QUEUES = 100
  const ITEMS = 200
  // Fill a spool: QUEUES queues of ITEMS items each, pipelined with noreply.
  const first = await serverFor(t, {})
  const mc = await RawClient.connect(first.port)
  const value = 'v'.repeat(100)
  for (let q = 0; q < QUEUES; q++) {
    let batch = ''
    for (let i = 0; i < ITEMS; i++) batch += `set replay${q} 0 0 ${value.length} noreply\r\n${value}\r\n`
    mc.send(batch)
  }
  mc.send('version\r\n')
  t.match(await mc.line(60_000), /^VERSION /, 'every set went through')
  mc.close()
  t.equal(await first.stop(), 0)

  const spool = tempDir()
  execFileSync('cp', ['-a', `${first.spool}/.`, spool])
  t.teardown(() => removeDir(spool))
  const port = await freePort()
  const conf = join(tempDir('starling-conf-'), 'config.yml')
  writeFileSync(conf, JSON.stringify({ starling: { http: { port } } }))
  const proc = spawn(process.execPath, [SERVER_MAIN, '-h', '127.0.0.1', '-p', '0', '-q', spool, '-f', conf], { stdio: 'ignore' })
  const exited = new Promise((r) => proc.on('exit', r))
  t.teardown(async () => {
    proc.kill('SIGTERM')
    await exited
  })

  const seen = new Set<number>()
  let queueRouteDuringReplay: number | null = null
  const deadline = Date.now() + 60_000
  for (;;) {
    if (Date.now() > deadline) throw new Error(`no 200 from /healthz within 60 s; saw ${[...seen]}`)
    let status: number
    try {
      status = (await request({ port, timeoutMs: 5000 }, '/healthz')).status
    } catch {
      await new Promise((r) => setTimeout(r, 5)) // not listening yet
      continue
    }
    seen.add(status)
    if (status === 503 && queueRouteDuringReplay === null) {
      queueRouteDuringReplay = (await request({ port }, '/queues/replay0/peek')).status
    }
    if (status === 200) break
  }
  t.ok(seen.has(503), `503 seen while replaying (statuses: ${[...seen]})`)
  t.equal(queueRouteDuringReplay, 503, 'queue routes wait for the replay too')
  const rows = JSON.parse((await request({ port }, '/queues')).text) as Array<{ items: number }>
  t.equal(rows.length, QUEUES)
  t.equal(rows.reduce((n, r) => n + r.items, 0), QUEUES * ITEMS, 'every item is back')
})
