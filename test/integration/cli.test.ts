import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { SERVER_MAIN, startServer, tempDir, removeDir, serverFor } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'

function run(args: string[]) {
  return spawnSync(process.execPath, [SERVER_MAIN, ...args], { encoding: 'utf8', timeout: 20000 })
}

function withConfig(yaml: string): string {
  const f = join(tempDir('starling-cli-'), 'c.yml')
  writeFileSync(f, yaml)
  return f
}

t.test('--help, -? and -V', async (t) => {
  for (const flag of ['--help', '-?']) {
    const r = run([flag])
    t.equal(r.status, 0)
    t.match(r.stdout, /--queue_path/)
    t.match(r.stdout, /-h, --host/)
  }
  const v = run(['-V'])
  t.equal(v.status, 0)
  t.match(v.stdout, /^starling 1\.0\.0$/m)
})

t.test('configuration errors: one line naming the key, exit 1, no stack trace', async (t) => {
  const cases: Array<[string, string[], RegExp]> = [
    ['unknown key', ['-f', withConfig('starling:\n  bogus_key: 1\n')], /starling\.bogus_key/],
    ['wrong type', ['-f', withConfig('starling:\n  port: lots\n')], /starling\.port/],
    ['wrong queue type', ['-f', withConfig('starling:\n  queues:\n    q:\n      max_items: -3\n')], /starling\.queues\.q\.max_items/],
    ['unknown queue key', ['-f', withConfig('starling:\n  queues:\n    q:\n      colour: red\n')], /starling\.queues\.q\.colour/],
    ['bad sync', ['-f', withConfig('starling:\n  sync: sometimes\n')], /starling\.sync/],
    ['no starling key', ['-f', withConfig('port: 1\n')], /starling/],
    ['bad yaml', ['-f', withConfig('starling: [\n')], /YAML/],
    ['missing file', ['-f', '/nonexistent/starling.yml'], /\/nonexistent\/starling\.yml/],
    ['bad port flag', ['-p', '99999'], /port/],
    ['unknown flag', ['--frobnicate'], /frobnicate/],
  ]
  for (const [name, args, re] of cases) {
    const r = run(args)
    t.equal(r.status, 1, `${name}: exit 1`)
    const lines = r.stderr.trim().split('\n')
    t.equal(lines.length, 1, `${name}: one line (${r.stderr})`)
    t.match(lines[0], re, name)
    t.notMatch(r.stderr, /\n\s+at /, `${name}: no stack trace`)
  }
})

t.test('an unwritable spool is one line naming the path', async (t) => {
  const parent = tempDir()
  const file = join(parent, 'not-a-dir')
  writeFileSync(file, 'x')
  const r = run(['-p', '0', '-q', join(file, 'spool')])
  t.equal(r.status, 1)
  t.match(r.stderr.trim(), new RegExp(`^starling: .*${file}`))
  t.equal(r.stderr.trim().split('\n').length, 1)
  removeDir(parent)
})

t.test('flags override the config file; pid file written and removed; SIGTERM exits 0', async (t) => {
  const dir = tempDir()
  const pid = join(dir, 'starling.pid')
  const conf = withConfig(`starling:\n  port: 1\n  queue_path: ${join(dir, 'ignored')}\n`)
  const s = await startServer({ spool: join(dir, 'spool'), args: ['-f', conf, '-P', pid] })
  t.ok(existsSync(join(dir, 'spool')), 'the -q spool was created')
  t.notOk(existsSync(join(dir, 'ignored')), 'the file spool was overridden')
  t.equal(readFileSync(pid, 'utf8').trim(), String(s.proc.pid))
  const c = await RawClient.connect(s.port)
  t.equal(await c.set('x', 'y'), 'STORED')
  c.close()
  t.equal(await s.stop(), 0)
  t.notOk(existsSync(pid), 'pid file removed')
  removeDir(dir)
})

t.test('-L writes pino JSON lines to the file; replay summary logged', async (t) => {
  const dir = tempDir()
  mkdirSync(join(dir, 'logs'))
  const logFile = join(dir, 'logs', 'starling.log')
  const s = await startServer({ logFile })
  t.ok(s.port > 0)
  await s.stop()
  const lines = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { msg: string })
  t.ok(lines.some((l) => l.msg === 'replay complete'))
  t.ok(lines.some((l) => l.msg === 'listening'))
  removeDir(dir)
  removeDir(s.spool)
})

t.test('SIGHUP reloads per-queue limits from the config file', async (t) => {
  const conf = withConfig('starling:\n  queues:\n    capped:\n      max_items: 1\n')
  const s = await serverFor(t, { args: ['-f', conf] })
  const c = await RawClient.connect(s.port)
  t.equal(await c.set('capped', 'a'), 'STORED')
  t.equal(await c.set('capped', 'b'), 'SERVER_ERROR queue full')
  writeFileSync(conf, 'starling:\n  queues:\n    capped:\n      max_items: 3\n')
  s.proc.kill('SIGHUP')
  for (let i = 0; i < 100 && !s.logs.some((l) => l.msg === 'configuration reloaded'); i++) await new Promise((r) => setTimeout(r, 20))
  t.equal(await c.set('capped', 'b'), 'STORED', 'the new limit applies')
  t.equal(await c.set('capped', 'c'), 'STORED')
  t.equal(await c.set('capped', 'd'), 'SERVER_ERROR queue full')
  // A broken file on reload keeps the running configuration.
  writeFileSync(conf, 'starling:\n  queues:\n    capped:\n      max_items: lots\n')
  s.proc.kill('SIGHUP')
  for (let i = 0; i < 100 && !s.logs.some((l) => l.msg === 'configuration reload failed; keeping the old one'); i++) await new Promise((r) => setTimeout(r, 20))
  t.ok(s.logs.some((l) => l.msg === 'configuration reload failed; keeping the old one'))
  t.equal(await c.get('capped'), 'a', 'still serving')
  c.close()
})

t.test('-d detaches, writes the pid file, and the daemon serves and stops on SIGTERM', async (t) => {
  const dir = tempDir()
  const pidFile = join(dir, 'd.pid')
  const conf = withConfig('starling:\n  port: 0\n')
  const logFile = join(dir, 'd.log')
  const r = run(['-d', '-P', pidFile, '-q', join(dir, 'spool'), '-f', conf, '-L', logFile])
  t.equal(r.status, 0, `parent exits 0 once the daemon is up (${r.stderr})`)
  const pid = Number(readFileSync(pidFile, 'utf8').trim())
  t.ok(pid > 0 && pid !== r.pid, 'the pid file names the daemon')
  const listening = readFileSync(logFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { msg: string; port?: number })
    .find((l) => l.msg === 'listening')!
  const c = await RawClient.connect(listening.port!)
  t.equal(await c.set('daemon', 'up'), 'STORED')
  c.close()
  process.kill(pid, 'SIGTERM')
  for (let i = 0; i < 200 && existsSync(pidFile); i++) await new Promise((res) => setTimeout(res, 25))
  t.notOk(existsSync(pidFile), 'pid file removed on stop')
  removeDir(dir)
})
