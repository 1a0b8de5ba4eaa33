/**
 * starling.http in the config: defaults (one place, config.ts), seconds turned into ms, and every
 * bad value a one-line error naming the key — through the parser, and once through the real CLI
 * (exit status 1, the message on stderr).
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { applyConfigDocument, defaultConfig, DEFAULT_HTTP } from '../../src/server/config.js'
import { removeDir, SERVER_MAIN, tempDir } from '../helpers/server.js'

const parse = (http: unknown, extra: Record<string, unknown> = {}) =>
  applyConfigDocument(defaultConfig(), { starling: { http, ...extra } })

t.test('defaults and conversions', async (t) => {
  t.equal(defaultConfig().http, null, 'off unless http: is set')
  t.same(parse({ port: 22180 }).http, { ...DEFAULT_HTTP, port: 22180 })
  t.equal(DEFAULT_HTTP.openTimeoutMs, 30_000, 'open_timeout defaults to 30 s')
  t.equal(DEFAULT_HTTP.maxOpenReceipts, 1000)
  t.equal(DEFAULT_HTTP.host, null, "host defaults to the server's")
  const c = parse({ port: 1, host: '0.0.0.0', open_timeout: 5, header_timeout: 2, max_body_wait: 3, keep_alive_timeout: 4, max_open_receipts: 7 })
  t.same(c.http, { port: 1, host: '0.0.0.0', tls: false, openTimeoutMs: 5000, headerTimeoutMs: 2000, maxBodyWaitMs: 3000, keepAliveTimeoutMs: 4000, maxOpenReceipts: 7 })
  const tls = { port: 0, cert: '/c', key: '/k' }
  t.equal(parse({ port: 1, tls: true }, { tls }).http?.tls, true)
})

t.test('bad values name their key', async (t) => {
  const cases: Array<[unknown, RegExp, Record<string, unknown>?]> = [
    [{ port: 0, bogus: 1 }, /^unknown config key starling\.http\.bogus$/],
    [{ host: '127.0.0.1' }, /^config key starling\.http\.port is required$/],
    [{ port: 70000 }, /^config key starling\.http\.port must be an integer from 0 to 65535$/],
    [{ port: 0, tls: true }, /^config key starling\.http\.tls needs starling\.tls/],
    [{ port: 0, tls: 'maybe' }, /^config key starling\.http\.tls must be true or false$/],
    [{ port: 0, open_timeout: 0 }, /^config key starling\.http\.open_timeout must be an integer from 1 to 86400$/],
    [{ port: 0, header_timeout: 'soon' }, /^config key starling\.http\.header_timeout must be an integer/],
    [{ port: 0, max_body_wait: -1 }, /^config key starling\.http\.max_body_wait must be an integer/],
    [{ port: 0, keep_alive_timeout: 1.5 }, /^config key starling\.http\.keep_alive_timeout must be an integer/],
    [{ port: 0, max_open_receipts: 0 }, /^config key starling\.http\.max_open_receipts must be an integer from 1/],
    ['yes', /^config key starling\.http must be a map$/],
  ]
  for (const [http, message] of cases) t.throws(() => parse(http), { message }, JSON.stringify(http))
})

t.test('the CLI reports a bad http key on one line and exits 1', async (t) => {
  const dir = tempDir('starling-conf-')
  t.teardown(() => removeDir(dir))
  const file = join(dir, 'config.yml')
  writeFileSync(file, 'starling:\n  http:\n    port: 0\n    bogus: 1\n')
  const r = spawnSync(process.execPath, [SERVER_MAIN, '-p', '0', '-q', join(dir, 'spool'), '-f', file], { encoding: 'utf8', timeout: 60_000 })
  t.equal(r.status, 1)
  t.equal(r.stderr, 'starling: unknown config key starling.http.bogus\n')
})
