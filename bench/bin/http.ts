/**
 * HTTP gateway throughput beside the memcached text protocol, in the same run against the same
 * server: N items of `--size` bytes are set then got over memcached text (raw pipelining client,
 * one request in flight per connection), then POSTed and GOT over HTTP (node:http Agent with
 * keepAlive), each with `--conns` connections. Repeats alternate protocols so drift on a shared
 * machine hits both alike. Every item is checked (count and size); lost items fail the run.
 *
 *   npm run build && node dist/bench/bin/http.js [--n 20000] [--conns 32] [--size 1024] [--reps 1]
 *
 * The load generator shares the machine with the server: its CPU is printed next to the server's.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { OUR_SERVER as SERVER_MAIN } from '../harness/peers.js'
import { cpuSeconds } from '../harness/procfs.js'
import { MemcacheTextClient } from '../protocols/memcacheText.js'

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '20000' },
    conns: { type: 'string', default: '32' },
    size: { type: 'string', default: '1024' },
    reps: { type: 'string', default: '1' },
  },
})
const N = Number(args.n)
const CONNS = Number(args.conns)
const SIZE = Number(args.size)
const REPS = Number(args.reps)

interface PhaseResult {
  phase: string
  items: number
  seconds: number
  serverCpu: number
  clientCpu: number
}

async function freePort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  const port = (srv.address() as AddressInfo).port
  await new Promise((r) => srv.close(r))
  return port
}

async function startServer(dir: string): Promise<{ proc: ChildProcess; port: number; httpPort: number }> {
  const [port, httpPort] = [await freePort(), await freePort()]
  const conf = join(dir, 'config.yml')
  writeFileSync(conf, `starling:\n  sync: never\n  http:\n    port: ${httpPort}\n`)
  const proc = spawn(process.execPath, [SERVER_MAIN, '-h', '127.0.0.1', '-p', String(port), '-q', join(dir, 'spool'), '-f', conf], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  await new Promise<void>((resolve, reject) => {
    let log = ''
    proc.stderr!.on('data', (d: Buffer) => {
      log += d.toString()
      if (log.includes('"msg":"listening"')) resolve()
    })
    proc.on('exit', (code) => reject(new Error(`server exited ${code}: ${log}`)))
  })
  return { proc, port, httpPort }
}

/** Run `op` N times over `CONNS` workers, one in flight each. */
async function phase(name: string, pid: number, op: (worker: number) => Promise<void>): Promise<PhaseResult> {
  let next = 0
  const cpu0 = cpuSeconds(pid)
  const client0 = process.cpuUsage()
  const started = performance.now()
  await Promise.all(
    Array.from({ length: CONNS }, async (_, w) => {
      while (next < N) {
        next++
        await op(w)
      }
    }),
  )
  const seconds = (performance.now() - started) / 1000
  const client = process.cpuUsage(client0)
  return { phase: name, items: N, seconds, serverCpu: (cpuSeconds(pid) - cpu0) / seconds, clientCpu: (client.user + client.system) / 1e6 / seconds }
}

function httpCall(agent: Agent, port: number, method: string, path: string, body?: Buffer): Promise<{ status: number; size: number }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent, headers: body ? { 'Content-Length': body.length } : {} }, (res) => {
      let size = 0
      res.on('data', (c: Buffer) => (size += c.length))
      res.on('end', () => resolve({ status: res.statusCode!, size }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

async function memcachedPhases(pid: number, port: number, rep: number): Promise<PhaseResult[]> {
  const clients = await Promise.all(Array.from({ length: CONNS }, () => MemcacheTextClient.connect('127.0.0.1', port)))
  const value = Buffer.alloc(SIZE, 0x6d)
  const queue = `mc${rep}`
  const set = await phase('memcached text set', pid, (w) => clients[w]!.set(queue, value))
  let bad = 0
  const get = await phase('memcached text get', pid, async (w) => {
    const v = await clients[w]!.get(queue)
    if (!v || v.length !== SIZE) bad++
  })
  for (const c of clients) c.close()
  if (bad > 0) throw new Error(`memcached get: ${bad} missing or wrong-sized items`)
  return [set, get]
}

async function httpPhases(pid: number, port: number, rep: number): Promise<PhaseResult[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONNS })
  const value = Buffer.alloc(SIZE, 0x68)
  const path = `/queues/http${rep}`
  let bad = 0
  const post = await phase('HTTP POST', pid, async () => {
    if ((await httpCall(agent, port, 'POST', path, value)).status !== 201) bad++
  })
  const get = await phase('HTTP GET', pid, async () => {
    const r = await httpCall(agent, port, 'GET', path)
    if (r.status !== 200 || r.size !== SIZE) bad++
  })
  agent.destroy()
  if (bad > 0) throw new Error(`HTTP: ${bad} failed requests or wrong-sized items`)
  return [post, get]
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'starling-bench-http-'))
  const { proc, port, httpPort } = await startServer(dir)
  const results: PhaseResult[] = []
  try {
    for (let rep = 0; rep < REPS; rep++) {
      // Alternate which protocol goes first.
      if (rep % 2 === 0) results.push(...(await memcachedPhases(proc.pid!, port, rep)), ...(await httpPhases(proc.pid!, httpPort, rep)))
      else results.push(...(await httpPhases(proc.pid!, httpPort, rep)), ...(await memcachedPhases(proc.pid!, port, rep)))
    }
  } finally {
    proc.kill('SIGTERM')
    await new Promise((r) => proc.on('exit', r))
    rmSync(dir, { recursive: true, force: true })
  }
  console.log(`\n${N} items of ${SIZE} B per phase, ${CONNS} connections, one request in flight each, sync: never, ${REPS} rep(s)\n`)
  console.log('| phase | items/s | server CPU (cores) | client CPU (cores) |')
  console.log('|---|---:|---:|---:|')
  for (const r of results) {
    console.log(`| ${r.phase} | ${Math.round(r.items / r.seconds)} | ${r.serverCpu.toFixed(2)} | ${r.clientCpu.toFixed(2)} |`)
  }
}

main().catch((err: Error) => {
  console.error(`bench/bin/http: ${err.message}`)
  process.exit(1)
})
