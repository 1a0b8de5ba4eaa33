/**
 * The examples, run as a user runs them (the built dist/examples/*.js), against a real server.
 */
import t from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startClientServer } from '../helpers/clientServer.js'
import { ROOT, tempDir } from '../helpers/server.js'
import type { StarlingClient } from '../../src/index.js'

const EXAMPLES = join(ROOT, 'dist', 'examples')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Run {
  proc: ChildProcess
  out: () => string
  exited: Promise<number | null>
}

function start(example: string, args: string[]): Run {
  const proc = spawn(process.execPath, [join(EXAMPLES, `${example}.js`), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '' },
  })
  let out = ''
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()))
  return { proc, out: () => out, exited: new Promise((r) => proc.on('exit', r)) }
}

async function run(example: string, args: string[]): Promise<{ code: number | null; out: string }> {
  const r = start(example, args)
  const code = await r.exited
  return { code, out: r.out() }
}

async function until(pred: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('timed out waiting')
    await sleep(20)
  }
}

let servers: string
let client: StarlingClient
t.before(async () => ({ client, addr: servers } = await startClientServer(t)))

t.test('producer then consumer', async (t) => {
  const p = await run('producer', ['--servers', servers, '--queue', 'ex_jobs', '--count', '5'])
  t.equal(p.code, 0, p.out)
  t.match(p.out, /^queued 5 items on ex_jobs; ex_jobs now holds 5$/m)
  const c = await run('consumer', ['--servers', servers, '--queue', 'ex_jobs', '--count', '5'])
  t.equal(c.code, 0, c.out)
  t.same(
    c.out.split('\n').filter((l) => l.startsWith('job ')).map((l) => l.split(':')[0]),
    ['job 1', 'job 2', 'job 3', 'job 4', 'job 5'],
  )
  t.match(c.out, /^processed 5 items from ex_jobs$/m)
  t.equal(await client.sizeof('ex_jobs'), 0)
  // STARLING_SERVERS works too; an idle consumer exits after --idle-ms
  const env = spawn(process.execPath, [join(EXAMPLES, 'consumer.js'), '--queue', 'ex_jobs', '--idle-ms', '300'], {
    env: { ...process.env, NODE_OPTIONS: '', STARLING_SERVERS: servers },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  env.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  t.equal(await new Promise((r) => env.on('exit', r)), 0)
  t.match(out, /^processed 0 items from ex_jobs$/m)
})

t.test('priority poller: order, redelivery, pid file', async (t) => {
  const pid = join(tempDir('starling-poller-'), 'worker.pid')
  for (let i = 1; i <= 3; i++) await client.set('ex_low', { id: `low${i}` })
  for (let i = 1; i <= 3; i++) await client.set('ex_medium', { id: `medium${i}` })
  await client.set('ex_high', { id: 'high1', failOnce: true })
  await client.set('ex_high', { id: 'high2' })
  const w = start('priority-poller', ['--servers', servers, '--queues', 'ex_high,ex_medium,ex_low', '--concurrency', '1', '--pid', pid, '--work-ms', '1', '--exit-when-idle'])
  await until(() => existsSync(pid) || w.proc.exitCode !== null)
  const code = await w.exited
  t.equal(code, 0, w.out())
  const done = w.out().split('\n').filter((l) => l.startsWith('done ')).map((l) => l.split(' ')[2])
  // high1 fails once and is handed back to the head of ex_high, so it runs again first
  t.same(done, ['high1', 'high2', 'medium1', 'medium2', 'medium3', 'low1', 'low2', 'low3'])
  t.match(w.out(), /^failed ex_high: job high1 failed \(handed back\)$/m)
  t.match(w.out(), /^poller stopped: 8 done, 1 handed back$/m)
  t.notOk(existsSync(pid), 'pid file removed')
})

t.test('priority poller: SIGTERM finishes the job in flight; SIGHUP restarts', async (t) => {
  const pid = join(tempDir('starling-poller-'), 'worker.pid')
  const w = start('priority-poller', ['--servers', servers, '--queues', 'ex_sig', '--concurrency', '1', '--pid', pid, '--work-ms', '400'])
  await until(() => /taking from/.test(w.out()))
  t.equal(readFileSync(pid, 'utf8').trim(), String(w.proc.pid))
  // a second worker with the same pid file refuses to start
  const second = await run('priority-poller', ['--servers', servers, '--queues', 'ex_sig', '--pid', pid])
  t.equal(second.code, 1)
  t.match(second.out, /already running as pid/)

  w.proc.kill('SIGHUP')
  await until(() => /restarted/.test(w.out()))
  await client.set('ex_sig', { id: 'a' })
  await client.set('ex_sig', { id: 'b' })
  await sleep(150) // job a is in flight (400 ms of work)
  w.proc.kill('SIGTERM')
  t.equal(await w.exited, 0, w.out())
  t.match(w.out(), /^done ex_sig a$/m)
  t.notMatch(w.out(), /^done ex_sig b$/m)
  t.same(await client.fetch('ex_sig'), { id: 'b' }, 'the job not started stays queued')
  t.notOk(existsSync(pid))
})

t.test('change stream over a fanout queue', async (t) => {
  const r = await run('change-stream', ['--servers', servers, '--count', '4'])
  t.equal(r.code, 0, r.out)
  t.equal(r.out.split('\n').filter((l) => l.startsWith('search: ')).length, 4)
  t.equal(r.out.split('\n').filter((l) => l.startsWith('audit:  ')).length, 4)
  t.match(r.out, /^published 4; search saw 4, audit saw 4; 4 left on the parent queue, flushed$/m)
  t.equal(await client.sizeof('changes+search'), 0)
  t.equal(await client.sizeof('changes+audit'), 0)
})
