/**
 * starling_top: the pure render on fixed stats, and the CLI against a real server.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { ROOT, startServer, removeDir } from '../helpers/server.js'
import { StarlingClient } from '../../src/index.js'
import { parseStats } from '../../src/client/stats.js'
import { formatBytes, formatUptime, parseTopArgs, renderTop, type TopSnapshot } from '../../src/top/top.js'

const TOP = join(ROOT, 'bin', 'starling_top')
// The launcher runs as a user runs it: without the test runner's TypeScript loader hooks.
const PLAIN_ENV = { ...process.env, NODE_OPTIONS: '' }

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [TOP, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: PLAIN_ENV })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    p.on('exit', (code) => resolve({ code, stdout, stderr }))
  })
}

function stats(counters: { cmd_get: number; cmd_set: number; jobs: [number, number, number]; uptime: number }) {
  const [items, total, expired] = counters.jobs
  return parseStats([
    ['pid', '4242'],
    ['uptime', String(counters.uptime)],
    ['time', '1700000000'],
    ['version', '0.1.0'],
    ['curr_items', String(items + 2)],
    ['total_items', String(total + 2)],
    ['bytes', '2048'],
    ['curr_connections', '3'],
    ['total_connections', '17'],
    ['cmd_get', String(counters.cmd_get)],
    ['cmd_set', String(counters.cmd_set)],
    ['get_hits', '90'],
    ['get_misses', '10'],
    ['queue_jobs_items', String(items)],
    ['queue_jobs_total_items', String(total)],
    ['queue_jobs_logsize', '1536'],
    ['queue_jobs_expired_items', String(expired)],
    ['queue_jobs_age', '12'],
    ['queue_changes+audit_items', '2'],
    ['queue_changes+audit_total_items', '2'],
    ['queue_changes+audit_logsize', '100'],
    ['queue_changes+audit_expired_items', '0'],
    ['queue_changes+audit_age', '0'],
  ])
}

t.test('renderTop on fixed stats: first screen, then rates per second', async (t) => {
  const first: TopSnapshot = { at: Date.UTC(2024, 0, 1, 12, 0, 0), servers: [{ server: 'q1:22122', stats: stats({ cmd_get: 100, cmd_set: 200, jobs: [10, 50, 0], uptime: 90061 }) }] }
  const second: TopSnapshot = { at: first.at + 2000, servers: [{ server: 'q1:22122', stats: stats({ cmd_get: 120, cmd_set: 250, jobs: [30, 100, 4], uptime: 90063 }) }] }
  const screen1 = renderTop(first)
  t.equal(
    screen1,
    [
      'starling_top - 12:00:00 UTC  servers 1',
      '',
      'q1:22122  version 0.1.0  pid 4242  up 1d 01:01:01  conns 3 (total 17)',
      'items 12 (total 52)  bytes 2.0 KiB  sets/s -  gets/s -  hits 90  misses 10',
      'QUEUE          ITEMS  TOTAL  IN/s  OUT/s  AGE ms  LOGSIZE  EXPIRED',
      'changes+audit      2      2     -      -       0    100 B        0',
      'jobs              10     50     -      -      12  1.5 KiB        0',
      '',
    ].join('\n'),
  )
  const screen2 = renderTop(second, first, { intervalSeconds: 2 })
  t.match(screen2, /^starling_top - 12:00:02 UTC  refresh 2s  servers 1$/m)
  t.match(screen2, /sets\/s 25\.0  gets\/s 10\.0/)
  // jobs: 50 in over 2 s = 25/s; out = 50 in - 20 growth - 4 expired = 26 over 2 s = 13/s
  t.match(screen2, /^jobs\s+30\s+100\s+25\.0\s+13\.0\s+12\s+1\.5 KiB\s+4$/m)
  t.match(screen2, /^changes\+audit\s+2\s+2\s+0\.0\s+0\.0\s/m)
})

t.test('renderTop shows a down server and totals over several', async (t) => {
  const snap: TopSnapshot = {
    at: 0,
    servers: [
      { server: 'a:1', stats: stats({ cmd_get: 1, cmd_set: 1, jobs: [1, 1, 0], uptime: 5 }) },
      { server: 'b:2', error: 'cannot connect: ECONNREFUSED' },
    ],
  }
  const screen = renderTop(snap)
  t.match(screen, /^b:2  DOWN  cannot connect: ECONNREFUSED$/m)
  t.match(screen, /^all servers: items 3  connections 3$/m)
  t.match(screen, /up 00:00:05/)
})

t.test('helpers and arguments', async (t) => {
  t.equal(formatBytes(0), '0 B')
  t.equal(formatBytes(16 * 1024 * 1024), '16.0 MiB')
  t.equal(formatUptime(59), '00:00:59')
  t.same(parseTopArgs([]).servers, ['127.0.0.1:22122'])
  t.same(parseTopArgs(['-h', 'example.com', '-p', '1234']).servers, ['example.com:1234'])
  t.same(parseTopArgs(['a:1', 'b']).servers, ['a:1', 'b:22122'])
  t.same(parseTopArgs(['-p', '5', 'c:6', '--once']), { servers: ['127.0.0.1:5', 'c:6'], once: true, json: false, delaySeconds: 1, help: false })
  t.throws(() => parseTopArgs(['-p', 'x']))
})

t.test('CLI against a server with known queues', async (t) => {
  const server = await startServer()
  const client = new StarlingClient(`127.0.0.1:${server.port}`)
  t.teardown(async () => {
    await client.close()
    await server.stop()
    removeDir(server.spool)
  })
  for (let i = 0; i < 3; i++) await client.set('top_alpha', i)
  await client.set('top_beta', 'b')

  const once = await run(['-h', '127.0.0.1', '-p', String(server.port), '--once'])
  t.equal(once.code, 0, once.stderr)
  t.match(once.stdout, new RegExp(`^127\\.0\\.0\\.1:${server.port}  version \\S+  pid ${server.proc.pid}`, 'm'))
  t.match(once.stdout, /^top_alpha\s+3\s+3\s+-\s+-\s/m)
  t.match(once.stdout, /^top_beta\s+1\s+1\s/m)
  t.notMatch(once.stdout, /\x1b/, 'no terminal escapes in --once')

  const json = await run([`127.0.0.1:${server.port}`, '--json'])
  t.equal(json.code, 0, json.stderr)
  const parsed = JSON.parse(json.stdout) as Record<string, { stats: Record<string, unknown>; queues: Record<string, { items: number }> }>
  const mine = parsed[`127.0.0.1:${server.port}`]!
  t.equal(mine.stats.pid, server.proc.pid)
  t.equal(mine.stats.queue_top_alpha_items, 3)
  t.equal(mine.queues.top_alpha!.items, 3)
  t.equal(mine.queues.top_beta!.items, 1)

  // live view, not a TTY: one screen per refresh; SIGTERM ends it with status 0
  const live = spawn(process.execPath, [TOP, '-p', String(server.port), '-d', '0.2'], { stdio: ['ignore', 'pipe', 'pipe'], env: PLAIN_ENV })
  let out = ''
  live.stdout.on('data', (d: Buffer) => (out += d.toString()))
  const screens = () => out.split('starling_top - ').length - 1
  for (let i = 0; i < 100 && screens() < 3; i++) await new Promise((r) => setTimeout(r, 50))
  live.kill('SIGTERM')
  const code = await new Promise((r) => live.on('exit', r))
  t.equal(code, 0)
  t.ok(screens() >= 3, 'refreshed several times')
  t.match(out, /IN\/s/)
})

t.test('CLI: an unreachable server is a one-line error and exit 1', async (t) => {
  for (const args of [['-p', '1', '--once'], ['-p', '1', '--json'], ['-p', '1']]) {
    const r = await run(args)
    t.equal(r.code, 1)
    t.equal(r.stdout, '')
    t.match(r.stderr, /^starling_top: cannot reach 127\.0\.0\.1:1: .*ECONNREFUSED\n$/)
  }
  const help = await run(['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /-h, --host HOST/)
})
