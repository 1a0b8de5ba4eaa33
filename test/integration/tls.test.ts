/**
 * TLS on a second port: a tls.connect client sets and gets; the plain port still works; with
 * require_client_cert a client without a certificate signed by the CA is refused.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startServer, removeDir, tempDir, serverFor } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'ignore' })
}

/** A throwaway CA, a server cert for 127.0.0.1 and a client cert, all signed by the CA. */
function makeCerts(): string {
  const dir = tempDir('starling-tls-')
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=test-ca'], dir)
  for (const who of ['server', 'client']) {
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=${who === 'server' ? '127.0.0.1' : 'client'}`], dir)
    writeExtensions(dir, who)
    openssl(['x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${who}.crt`, '-days', '1', '-extfile', `${who}.ext`], dir)
  }
  return dir
}

function writeExtensions(dir: string, who: string): void {
  const ext = who === 'server' ? 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' : 'extendedKeyUsage=clientAuth\n'
  writeFileSync(join(dir, `${who}.ext`), ext)
}

/** Send `payload` over TLS; resolve with everything read once `replies` END/STORED lines came, or on close. */
function tlsRequest(port: number, options: { ca: Buffer; cert?: Buffer; key?: Buffer }, payload: string, replies: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = ''
    const socket: TLSSocket = tlsConnect({ host: '127.0.0.1', port, ...options }, () => socket.write(payload))
    const finish = (): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(out)
    }
    const timer = setTimeout(finish, 5000)
    socket.on('data', (d: Buffer) => {
      out += d.toString('latin1')
      if (out.split('\r\n').filter((l) => l === 'END' || l === 'STORED').length >= replies) finish()
    })
    socket.on('close', finish)
    socket.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
  })
}

const dir = makeCerts()
t.teardown(() => removeDir(dir))
const file = (n: string) => join(dir, n)

t.test('TLS port serves the text protocol; the plain port still works', async (t) => {
  const s = await serverFor(t, { config: { tls: { port: 0, cert: file('server.crt'), key: file('server.key') } } })
  const listening = s.logs.find((l) => l.msg === 'listening')!
  const tlsPort = listening.tlsPort as number
  t.ok(tlsPort > 0 && tlsPort !== s.port, `TLS on its own port ${tlsPort}`)
  const reply = await tlsRequest(tlsPort, { ca: readFileSync(file('ca.crt')) }, 'set secure 0 0 6\r\nsecret\r\nget secure\r\n', 2)
  t.equal(reply, 'STORED\r\nVALUE secure 0 6\r\nsecret\r\nEND\r\n')
  const plain = await RawClient.connect(s.port)
  t.equal(await plain.set('plain', 'ok'), 'STORED')
  t.equal(await plain.get('plain'), 'ok')
  plain.close()
})

t.test('require_client_cert refuses a client without a valid certificate', async (t) => {
  const s = await startServer({
    config: { tls: { port: 0, cert: file('server.crt'), key: file('server.key'), ca: file('ca.crt'), require_client_cert: true } },
  })
  t.teardown(async () => {
    await s.stop()
    removeDir(s.spool)
  })
  const tlsPort = s.logs.find((l) => l.msg === 'listening')!.tlsPort as number
  const ca = readFileSync(file('ca.crt'))
  const ok = await tlsRequest(tlsPort, { ca, cert: readFileSync(file('client.crt')), key: readFileSync(file('client.key')) }, 'set m 0 0 2\r\nhi\r\n', 1)
  t.equal(ok, 'STORED\r\n', 'a client with a CA-signed cert is served')
  const refused = await tlsRequest(tlsPort, { ca }, 'set m 0 0 2\r\nhi\r\n', 1).catch((e: Error) => `error: ${e.message}`)
  t.notMatch(refused, /STORED/, `no certificate: refused (${refused.slice(0, 60)})`)
  // A self-signed client cert not from the CA is refused too.
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'rogue.key', '-out', 'rogue.crt', '-days', '1', '-subj', '/CN=rogue'], dir)
  const rogue = await tlsRequest(tlsPort, { ca, cert: readFileSync(file('rogue.crt')), key: readFileSync(file('rogue.key')) }, 'set m 0 0 2\r\nhi\r\n', 1).catch(
    (e: Error) => `error: ${e.message}`,
  )
  t.notMatch(rogue, /STORED/, 'a certificate from another CA: refused')
  const plain = await RawClient.connect(s.port)
  t.equal(await plain.get('m'), 'hi', 'the authorised item was stored')
  t.equal(await plain.get('m'), null, 'and only that one')
  plain.close()
})
