/**
 * CPU per item of our own code, without the kernel's socket work and without most of the noise of a
 * shared machine: the real server (StarlingServer: connections, handler, engine, journal on a temp
 * spool) driven through in-memory sockets, one request in flight per connection, the next one on
 * the next turn of the event loop. Several builds run alternately in ONE process (their order
 * rotating each round), so load drift hits them alike; it prints each run and the medians.
 *
 *   node dist/bench/bin/cpuPerItem.js drain|mixed <rounds> <root> [<root> ...]
 *     N=200000 (items)  MEM=<bytes> (max_memory_size, e.g. 4194304 to read behind sooner)
 *
 * A root is a project directory with dist/ built (e.g. a saved copy of the old dist/ beside
 * node_modules). drain: N sets by 32 connections, then N gets (timed); mixed: 64 connections
 * alternating set and get, N of each (timed). Instructions rather than time (load does not change
 * them): run it under `valgrind --tool=callgrind --smc-check=all-non-file node --single-threaded`
 * with rounds 0 (the warm-up run only) for two values of N; the difference over the difference in
 * N is the instructions an item (README, Performance).
 */
import { EventEmitter } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const [workload = 'drain', roundsArg = '3', ...roots] = process.argv.slice(2)
const N = Number(process.env['N'] ?? 200000)
const SIZE = 1024
const SET = Buffer.concat([Buffer.from(`set cmp 0 0 ${SIZE}\r\n`), Buffer.alloc(SIZE, 0x61), Buffer.from('\r\n')])
const GET = Buffer.from('get cmp\r\n')

/** What Connection uses of a socket; every write is one whole reply (one request in flight). */
class MemorySocket extends EventEmitter {
  readonly writableLength = 0
  readonly remoteAddress = '127.0.0.1'
  readonly remotePort = 1
  constructor(private readonly onReply: (reply: Buffer) => void) {
    super()
  }
  write(chunk: Buffer): boolean {
    this.onReply(chunk)
    return true
  }
  setNoDelay(): void {}
  setTimeout(): void {}
  cork(): void {}
  uncork(): void {}
  pause(): void {}
  resume(): void {}
  end(): void {
    this.emit('close')
  }
  destroy(): void {
    this.emit('close')
  }
}

interface Receiver {
  receive(chunk: Buffer): void
}
interface Server {
  start(): Promise<unknown>
  stop(): Promise<void>
}

/** Run `total` requests over `conns` connections; resolves with the hits (replies longer than END). */
function drive(server: Server, conns: number, next: () => Buffer, total: number): Promise<number> {
  return new Promise((resolve) => {
    let replies = 0
    let issued = 0
    let hits = 0
    const send = (c: { conn: Receiver | null }): void => {
      if (issued >= total) return
      issued++
      c.conn!.receive(next())
    }
    // Server.accept is private: the harness stands in for the listener that calls it.
    const accept = (server as unknown as { accept(s: MemorySocket, external: boolean): Receiver }).accept.bind(server)
    for (let i = 0; i < conns; i++) {
      const c: { conn: Receiver | null } = { conn: null }
      c.conn = accept(
        new MemorySocket((reply) => {
          if (reply.length > 10 && reply[0] === 0x56) hits++ // 'V'ALUE
          if (++replies >= total) return resolve(hits)
          setImmediate(send, c)
        }),
        true,
      )
      send(c)
    }
  })
}

async function run(root: string): Promise<number> {
  const { StarlingServer } = await import(join(root, 'dist/src/server/server.js'))
  const { defaultConfig } = await import(join(root, 'dist/src/server/config.js'))
  const { createLogger } = await import(join(root, 'dist/src/server/logger.js'))
  const spool = mkdtempSync(join(tmpdir(), 'cpu-per-item-'))
  const config = { ...defaultConfig(), port: 0, queuePath: join(spool, 'spool') }
  if (process.env['MEM']) config.queueDefaults = { ...config.queueDefaults, maxMemorySize: Number(process.env['MEM']) }
  const server = new StarlingServer(config, createLogger('warn', null)) as Server
  await server.start()
  let k = 0
  if (workload === 'drain') await drive(server, 32, () => SET, N)
  const cpu0 = process.cpuUsage()
  const hits =
    workload === 'drain' ? await drive(server, 32, () => GET, N) : await drive(server, 64, () => (k++ & 1 ? GET : SET), 2 * N)
  const cpu = process.cpuUsage(cpu0)
  await server.stop()
  rmSync(spool, { recursive: true, force: true })
  // a drain must get every item back; a mixed get may find the queue empty (a miss)
  if (workload === 'drain' && hits !== N) throw new Error(`${root}: ${hits} of ${N} items came back`)
  const us = (cpu.user + cpu.system) / N
  console.log(`${root} ${workload} ${N} items (${hits} got): ${us.toFixed(2)} µs of CPU an item`)
  return us
}

const results = new Map<string, number[]>(roots.map((r) => [r, []]))
for (const root of roots) await run(root) // warm-up, not counted
for (let r = 0; r < Number(roundsArg); r++) {
  // rotate the order: the run after another build's stop pays for some of its garbage
  const order = roots.slice(r % roots.length).concat(roots.slice(0, r % roots.length))
  for (const root of order) results.get(root)!.push(await run(root))
}
for (const [root, xs] of results) {
  if (xs.length === 0) continue
  const sorted = xs.slice().sort((a, b) => a - b)
  console.log(`median ${root}: ${sorted[sorted.length >> 1]!.toFixed(2)} µs an item (${xs.map((x) => x.toFixed(1)).join(' ')})`)
}
