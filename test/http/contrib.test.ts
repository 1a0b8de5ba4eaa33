/**
 * contrib/: the systemd unit passes `systemd-analyze verify` (with ExecStart pointed at this
 * checkout's launcher, since the unit names the npm -g install path), and the logrotate snippet
 * rotates a live server's log file: after a forced rotation the server keeps writing to the
 * (truncated) file, no restart needed.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, removeDir, serverFor, tempDir } from '../helpers/server.js'
import { requireTool } from '../helpers/clients.js'

const UNIT = join(ROOT, 'contrib', 'starling.service')
const LOGROTATE = join(ROOT, 'contrib', 'starling.logrotate')

t.test('the systemd unit verifies', async (t) => {
  // .ci/run installs systemd: without systemd-analyze this test fails, it is not skipped.
  requireTool('systemd-analyze', ['--version'], 'systemd')
  const unit = readFileSync(UNIT, 'utf8')
  t.match(unit, /^ExecStart=\/usr\/local\/bin\/starling /m)
  t.match(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m)
  const dir = tempDir('starling-unit-')
  t.teardown(() => removeDir(dir))
  const local = join(dir, 'starling.service')
  writeFileSync(local, unit.replace('/usr/local/bin/starling', join(ROOT, 'bin', 'starling')))
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', local], { stdio: 'pipe', timeout: 60_000 })
  t.equal(r.stderr.toString(), '', 'no warnings')
  t.equal(r.status, 0, 'systemd-analyze verify passes')

  // The check can fail: a broken copy is reported.
  writeFileSync(local, unit.replace('Restart=on-failure', 'Restart=sometimes'))
  const bad = spawnSync('systemd-analyze', ['verify', '--man=no', local], { stdio: 'pipe', timeout: 60_000 })
  t.match(bad.stderr.toString(), /restart specifier/)
})

t.test('the logrotate snippet rotates a live server log', async (t) => {
  requireTool('logrotate', ['--version'], 'logrotate')
  const dir = tempDir('starling-logrotate-')
  t.teardown(() => removeDir(dir))
  const logDir = join(dir, 'log')
  mkdirSync(logDir)
  const logFile = join(logDir, 'starling.log')
  const confFile = join(dir, 'config.yml')
  writeFileSync(confFile, 'starling:\n  max_items: 0\n')
  const s = await serverFor(t, { logFile, args: ['-f', confFile] })
  const before = readFileSync(logFile, 'utf8')
  t.match(before, /"msg":"listening"/)

  // Same snippet, pointed at the test's directory and run as ourselves.
  const snippet = readFileSync(LOGROTATE, 'utf8').replace('/var/log/starling', logDir).replace(/^\s*su .*$/m, '')
  const conf = join(dir, 'logrotate.conf')
  writeFileSync(conf, snippet)
  const r = spawnSync('logrotate', ['-f', '-s', join(dir, 'state'), conf], { stdio: 'pipe', timeout: 60_000 })
  t.equal(r.status, 0, `logrotate: ${r.stderr.toString()}`)
  t.ok(existsSync(`${logFile}.1`), 'the old log was kept as starling.log.1')
  t.match(readFileSync(`${logFile}.1`, 'utf8'), /"msg":"listening"/)
  t.equal(readFileSync(logFile, 'utf8'), '', 'the live file was truncated')

  // The server keeps logging to the same path (SIGHUP logs a reload line).
  s.proc.kill('SIGHUP')
  const deadline = Date.now() + 15_000
  let after = ''
  while (Date.now() < deadline && !after.includes('configuration reloaded')) {
    await new Promise((r) => setTimeout(r, 50))
    after = readFileSync(logFile, 'utf8')
  }
  t.match(after, /^\{.*"msg":"configuration reloaded"/, 'new lines land at the start of the rotated file')
})
