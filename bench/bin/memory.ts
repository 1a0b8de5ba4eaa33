/**
 * Memory per item: the server's RSS while one queue fills with N items of S bytes, when full,
 * after a restart (replay), while draining, and once empty — through the real server
 * (dist/src/server/main.js) with default settings on a temp spool.
 *
 *   node dist/bench/bin/memory.js [-n 1000000] [-size 256] [-window 4] [-batch 1000]
 *                                 [-main bin/starling|path/to/main.js] [-config file.yml] [-node-args "..."] [-keep]
 *
 * The server is bin/starling (with the node flags of its #! line) unless -main names a main.js.
 *
 * One connection pipelines `set` commands in batches (`-window` batches in flight), then, after the
 * restart, `get`s them back in the same way; every item must come back, in order, intact (each
 * payload starts with its index). RSS (VmRSS) is sampled every 100 ms from /proc/<pid>/status; the
 * table gives, per phase, the highest and the last sample, and the process's peak (VmHWM). `-main`
 * runs another build (e.g. a saved copy of the old dist/) for before/after figures in one session.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { memoryMiB } from '../harness/procfs.js'
import { listening, type Server, stop } from '../harness/serverProcess.js'

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`-${name}`)
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : dflt
}

// bin/starling as installed (with its node flags), from the project root; or a main.js, run by node
const MAIN = arg('main', join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'starling'))
const N = Number(arg('n', '1000000'))
const SIZE = Number(arg('size', '256'))
const WINDOW = Number(arg('window', '4'))
const BATCH = Number(arg('batch', '1000'))
const CONFIG = arg('config', '')
const NODE_ARGS = arg('node-args', '').split(' ').filter(Boolean)
const KEEP = process.argv.includes('-keep')
const QUEUE = 'mem'
const SAMPLE_MS = 100

if (!(N > 0) || !(SIZE >= 10) || !(WINDOW >= 1) || !(BATCH >= 1)) {
  process.stderr.write('memory: -n > 0, -size >= 10 (the payload starts with a 10-digit index), -window >= 1, -batch >= 1\n')
  process.exit(2)
}

// ---------------------------------------------------------------------------------------------
// The server process and its RSS

async function start(spool: string): Promise<Server> {
  const t0 = performance.now()
  const args = [MAIN, '-h', '127.0.0.1', '-p', '0', '-q', spool, ...(CONFIG ? ['-f', CONFIG] : [])]
  const proc = MAIN.endsWith('.js')
    ? spawn(process.execPath, [...NODE_ARGS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(MAIN, args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: NODE_ARGS.join(' ') } })
  return listening(proc, t0)
}

interface Phase {
  name: string
  items: number
  ms: number
  maxRss: number
  lastRss: number
  hwm: number
}

/** Samples the RSS of `pid` every SAMPLE_MS into the current phase. */
class Sampler {
  private timer: NodeJS.Timeout | undefined
  private phase: Phase | undefined
  private t0 = 0
  readonly phases: Phase[] = []

  constructor(private pid: number) {}

  begin(name: string, pid = this.pid): void {
    this.end()
    this.pid = pid
    this.phase = { name, items: 0, ms: 0, maxRss: 0, lastRss: 0, hwm: 0 }
    this.t0 = performance.now()
    this.sample()
    this.timer = setInterval(() => this.sample(), SAMPLE_MS)
  }

  set items(n: number) {
    if (this.phase) this.phase.items = n
  }

  end(): void {
    if (!this.phase) return
    clearInterval(this.timer)
    this.sample()
    this.phase.ms = performance.now() - this.t0
    this.phases.push(this.phase)
    this.phase = undefined
  }

  private sample(): void {
    const m = memoryMiB(this.pid)
    const p = this.phase!
    if (!Number.isFinite(m.rss)) return
    p.lastRss = m.rss
    p.maxRss = Math.max(p.maxRss, m.rss)
    p.hwm = m.peak
  }
}

// ---------------------------------------------------------------------------------------------
// One pipelined connection, parsed as bytes

const CRLF = Buffer.from('\r\n')

class Conn {
  private buf: Buffer = Buffer.alloc(0)
  private replies = 0
  private waiting: { until: number; resolve: () => void } | undefined
  /** Called per reply: a line, and for VALUE replies the data block. */
  onReply: (line: string, data: Buffer | undefined) => void = () => {}

  private constructor(private readonly sock: Socket) {
    sock.on('data', (d: Buffer) => this.onData(d))
  }

  static open(port: number): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const sock = connect(port, '127.0.0.1', () => resolve(new Conn(sock)))
      sock.setNoDelay(true)
      sock.once('error', reject)
    })
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d])
    let at = 0
    for (;;) {
      const eol = this.buf.indexOf(CRLF, at)
      if (eol < 0) break
      const line = this.buf.toString('latin1', at, eol)
      if (line.startsWith('VALUE ')) {
        const bytes = Number(line.slice(line.lastIndexOf(' ') + 1))
        const end = eol + 2 + bytes + 2 + 5 // data, CRLF, "END\r\n"
        if (end > this.buf.length) break
        this.onReply(line, this.buf.subarray(eol + 2, eol + 2 + bytes))
        at = end
      } else {
        this.onReply(line, undefined)
        at = eol + 2
      }
      const w = this.waiting
      if (++this.replies >= (w?.until ?? Infinity) && w) {
        this.waiting = undefined
        w.resolve()
      }
    }
    this.buf = at >= this.buf.length ? Buffer.alloc(0) : this.buf.subarray(at)
  }

  /** Write the batches from `make(i)` for i in [0, batches), at most WINDOW in flight, `per` replies each. */
  async pipeline(batches: number, per: (i: number) => number, make: (i: number) => Buffer, progress: (done: number) => void): Promise<void> {
    let sent = 0
    let done = 0
    const base = this.replies
    const ends: number[] = [] // reply count at the end of each batch sent
    while (done < batches) {
      while (sent < batches && sent - done < WINDOW) {
        ends.push((ends[ends.length - 1] ?? base) + per(sent))
        this.sock.write(make(sent++))
      }
      // replies come in order: wait for the oldest batch's
      const until = ends[done]!
      if (this.replies < until) await new Promise<void>((resolve) => (this.waiting = { until, resolve }))
      done++
      progress(done)
    }
  }

  close(): void {
    this.sock.destroy()
  }
}

// ---------------------------------------------------------------------------------------------

const filler = Buffer.alloc(SIZE, 'x')

function setBatch(from: number, to: number): Buffer {
  const parts: Buffer[] = []
  for (let i = from; i < to; i++) {
    const data = Buffer.from(filler)
    data.write(String(i).padStart(10, '0'), 0, 'latin1')
    parts.push(Buffer.from(`set ${QUEUE} 0 0 ${SIZE}\r\n`, 'latin1'), data, CRLF)
  }
  return Buffer.concat(parts)
}

const getBatches = new Map<number, Buffer>()
function getBatch(count: number): Buffer {
  let b = getBatches.get(count)
  if (!b) getBatches.set(count, (b = Buffer.from(`get ${QUEUE}\r\n`.repeat(count), 'latin1')))
  return b
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

async function main(): Promise<void> {
  const spool = mkdtempSync(join(tmpdir(), 'starling-memory-'))
  const batches = Math.ceil(N / BATCH)
  const per = (b: number): number => Math.min(BATCH, N - b * BATCH)
  try {
    let server = await start(spool)
    const sampler = new Sampler(server.proc.pid!)
    sampler.begin('idle')
    await sleep(1000)
    sampler.end()

    // Fill.
    let conn = await Conn.open(server.port)
    let errors = 0
    conn.onReply = (line) => {
      if (line !== 'STORED' && errors++ < 5) process.stderr.write(`set: ${line}\n`)
    }
    sampler.begin('filling')
    await conn.pipeline(batches, per, (b) => setBatch(b * BATCH, b * BATCH + per(b)), (d) => (sampler.items = Math.min(N, d * BATCH)))
    sampler.end()
    conn.close()
    sampler.begin('full (5 s later)')
    sampler.items = N
    await sleep(5000)
    sampler.end()

    // Restart: replay, then the RSS once it listens and a few seconds later.
    await stop(server)
    server = await start(spool)
    sampler.begin('restarted (5 s later)', server.proc.pid!)
    sampler.items = N
    await sleep(5000)
    sampler.end()

    // Drain, checking order and content.
    conn = await Conn.open(server.port)
    let next = 0
    let bad = 0
    conn.onReply = (line, data) => {
      if (!data) {
        if (line !== 'END' && bad++ < 5) process.stderr.write(`get: ${line}\n`)
        else if (line === 'END') bad++ // a miss while items should remain
        return
      }
      const idx = Number(data.toString('latin1', 0, 10))
      if ((idx !== next || data.length !== SIZE) && bad++ < 5) process.stderr.write(`get: item ${idx}, expected ${next}\n`)
      next = idx + 1
    }
    sampler.begin('draining')
    await conn.pipeline(batches, per, (b) => getBatch(per(b)), (d) => (sampler.items = Math.max(0, N - d * BATCH)))
    sampler.end()
    conn.close()
    sampler.begin('empty (5 s later)')
    await sleep(5000)
    sampler.end()
    await stop(server)

    const mib = (x: number): string => x.toFixed(0).padStart(7)
    process.stdout.write(`\n${N} items x ${SIZE} B, one queue, ${CONFIG ? `config ${CONFIG}` : 'default settings'}, ${MAIN}\n`)
    process.stdout.write(`${'phase'.padEnd(22)} ${'items'.padStart(10)} ${'secs'.padStart(7)} ${'max RSS'.padStart(7)} ${'end RSS'.padStart(7)} ${'VmHWM'.padStart(7)}  (MiB)\n`)
    for (const p of sampler.phases) {
      process.stdout.write(`${p.name.padEnd(22)} ${String(p.items).padStart(10)} ${(p.ms / 1000).toFixed(1).padStart(7)} ${mib(p.maxRss)} ${mib(p.lastRss)} ${mib(p.hwm)}\n`)
    }
    const itemsOk = next === N && bad === 0 && errors === 0
    process.stdout.write(`items back in order: ${itemsOk ? 'all' : `NO (last ${next - 1}, ${bad} bad replies, ${errors} failed sets)`}\n`)
    process.stdout.write(JSON.stringify({ n: N, size: SIZE, main: MAIN, ok: itemsOk, phases: sampler.phases }) + '\n')
    if (!itemsOk) process.exitCode = 1
  } finally {
    if (!KEEP) rmSync(spool, { recursive: true, force: true })
  }
}

main().catch((err) => {
  process.stderr.write(`memory: ${(err as Error).stack ?? err}\n`)
  process.exit(1)
})
