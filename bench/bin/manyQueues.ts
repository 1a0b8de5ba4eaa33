/**
 * Many queues: creation rate, RSS per queue, `stats`, restart time and delete, through the real
 * server (dist/src/server/main.js) on a temp spool.
 *
 *   node dist/bench/bin/manyQueues.js [-n 100000] [-batch 5000] [-size 64] [-sync never]
 *                                     [-fdlimit N] [-keep] [-node-args "--cpu-prof"] [-churn]
 *
 * The server is started as users start it: bin/starling (its node flags and allocator settings);
 * -node-args go to node through NODE_OPTIONS. -churn only creates the queues and deletes them
 * again in one server (issue 17 target 5: RSS back to within 20 MB of its start).
 *
 * One connection pipelines `set q<i>` (one item per new queue); the rate is reported per batch,
 * so the last batches compare with the first within one run. Then: RSS, a full `stats`, a clean
 * restart (time until it listens), a `get` of every queue (every item must come back), and a
 * `delete` of every queue (RSS and files left). Prints a human summary and one JSON line.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { memoryMiB } from '../harness/procfs.js'
import { listening, type Server, stop } from '../harness/serverProcess.js'

// dist/bench/bin -> the package root's bin/starling
const STARLING = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'starling')

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`-${name}`)
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : dflt
}

const N = Number(arg('n', '100000'))
const BATCH = Number(arg('batch', '5000'))
const SIZE = Number(arg('size', '64'))
const SYNC = arg('sync', 'never')
const FD_LIMIT = Number(arg('fdlimit', '0'))
const NODE_ARGS = arg('node-args', '').split(' ').filter(Boolean)
const KEEP = process.argv.includes('-keep')
const CHURN = process.argv.includes('-churn')

async function start(spool: string, config: string): Promise<Server> {
  const t0 = performance.now()
  const cmd = [STARLING, '-h', '127.0.0.1', '-p', '0', '-q', spool, '-f', config]
  const quoted = cmd.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ')
  const env = NODE_ARGS.length > 0 ? { ...process.env, NODE_OPTIONS: NODE_ARGS.join(' ') } : process.env
  const proc =
    FD_LIMIT > 0
      ? spawn('sh', ['-c', `ulimit -n ${FD_LIMIT} && exec ${quoted}`], { stdio: ['ignore', 'pipe', 'pipe'], env })
      : spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env })
  return listening(proc, t0)
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/**
 * The lowest RSS (MiB) over `seconds` (the server's reclaim or V8's idle-time GCs give pages back),
 * and how long after the call RSS first came within 20 MiB of `start` (NaN: it did not).
 */
async function settledRss(pid: number, seconds: number, start = NaN): Promise<{ rss: number; within20Ms: number }> {
  const t0 = performance.now()
  let rss = memoryMiB(pid).rss
  let within20Ms = rss <= start + 20 ? 0 : NaN
  for (let i = 0; i < seconds * 4; i++) {
    await sleep(250)
    rss = Math.min(rss, memoryMiB(pid).rss)
    if (Number.isNaN(within20Ms) && rss <= start + 20) within20Ms = performance.now() - t0
  }
  return { rss, within20Ms }
}

/** Target 5 alone: create N queues of one item, delete them all, RSS against the start's. */
async function churn(spool: string, config: string): Promise<void> {
  const s = await start(spool, config)
  const p = await Pipe.open(s.port)
  await sleep(1000)
  const rss0 = memoryMiB(s.proc.pid!).rss
  const stored = (await each(p, 0, N, (i) => `set ${name(i)} 0 0 ${SIZE}\r\n${payload}\r\n`, isReply)).filter((l) => l === 'STORED').length
  await sleep(1000)
  const rssFull = memoryMiB(s.proc.pid!).rss
  const deleted = (await each(p, 0, N, (i) => `delete ${name(i)}\r\n`, isReply)).filter((l) => l === 'DELETED').length
  const rssDeleted = memoryMiB(s.proc.pid!).rss
  const { rss: rssSettled, within20Ms } = await settledRss(s.proc.pid!, 30, rss0)
  const files = readdirSync(spool).filter((f) => !f.startsWith('.')).length
  p.close()
  await stop(s)
  if (!KEEP) rmSync(spool, { recursive: true, force: true })
  const result = { queues: N, itemBytes: SIZE, stored, deleted, filesLeft: files, rssStartMiB: Math.round(rss0), rssFullMiB: Math.round(rssFull), rssJustDeletedMiB: Math.round(rssDeleted), rssSettledMiB: Math.round(rssSettled), rssAboveStartMiB: Math.round(rssSettled - rss0), within20MiBAfterMs: Math.round(within20Ms) }
  process.stderr.write(
    `churn ${N} queues x ${SIZE} B: RSS ${result.rssStartMiB} -> ${result.rssFullMiB} MiB full (${Math.round(((rssFull - rss0) * 1048576) / N)} B a queue), ` +
      `${result.rssJustDeletedMiB} just after the deletes, ${result.rssSettledMiB} within 30 s (+${result.rssAboveStartMiB}; within 20 MiB of the start after ${result.within20MiBAfterMs} ms); ${stored} stored, ${deleted} deleted, ${files} files left\n`,
  )
  process.stdout.write(JSON.stringify(result) + '\n')
}

/** One connection; `send` writes commands and resolves once `count` replies (lines matching) arrive. */
class Pipe {
  private buf = ''
  private want = 0
  private got = 0
  private lines: string[] = []
  private wake: (() => void) | null = null
  private constructor(private readonly sock: Socket, private match: (line: string) => boolean) {
    sock.setEncoding('latin1')
    sock.on('data', (d: string) => this.onData(d))
  }

  static open(port: number): Promise<Pipe> {
    return new Promise((resolve, reject) => {
      const sock = connect(port, '127.0.0.1', () => resolve(new Pipe(sock, () => true)))
      sock.once('error', reject)
    })
  }

  private onData(d: string): void {
    this.buf += d
    let at = 0
    let i: number
    while ((i = this.buf.indexOf('\r\n', at)) >= 0) {
      const line = this.buf.slice(at, i)
      at = i + 2
      this.lines.push(line)
      if (this.match(line)) this.got++
    }
    this.buf = this.buf.slice(at)
    if (this.got >= this.want && this.wake) {
      const w = this.wake
      this.wake = null
      w()
    }
  }

  /** Send `text`; wait for `count` lines that `match`. Returns every line received. */
  async run(text: string, count: number, match: (line: string) => boolean): Promise<string[]> {
    this.match = match
    this.got = 0
    this.want = count
    this.lines = []
    const done = new Promise<void>((r) => (this.wake = r))
    this.sock.write(text, 'latin1')
    if (count > 0) await done
    return this.lines
  }

  close(): void {
    this.sock.destroy()
  }
}

const isReply = (l: string): boolean => /^(STORED|DELETED|NOT_FOUND|SERVER_ERROR|CLIENT_ERROR|ERROR)/.test(l)
const isEnd = (l: string): boolean => l === 'END' || /^(SERVER_ERROR|CLIENT_ERROR)/.test(l)
const payload = 'x'.repeat(SIZE)
const name = (i: number): string => `q${i}`

/** Run commands for queues [from, to) in chunks of 1000 pipelined (`per` replies each); returns the lines. */
async function each(p: Pipe, from: number, to: number, cmd: (i: number) => string, match: (l: string) => boolean, per = 1): Promise<string[]> {
  const out: string[] = []
  for (let i = from; i < to; i += 1000) {
    const end = Math.min(to, i + 1000)
    let text = ''
    for (let k = i; k < end; k++) text += cmd(k)
    for (const l of await p.run(text, (end - i) * per, match)) out.push(l)
  }
  return out
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[s.length >> 1]!
}

async function main(): Promise<void> {
  const spool = mkdtempSync(join(tmpdir(), 'manyq-spool-'))
  const config = join(mkdtempSync(join(tmpdir(), 'manyq-conf-')), 'config.yml')
  writeFileSync(config, JSON.stringify({ starling: { sync: SYNC === 'always' || SYNC === 'never' ? SYNC : Number(SYNC) } }))
  if (CHURN) return churn(spool, config)
  let s = await start(spool, config)
  let p = await Pipe.open(s.port)
  const rss0 = memoryMiB(s.proc.pid!).rss
  const rates: number[] = []
  let errors = 0
  for (let b = 0; b < N; b += BATCH) {
    const t0 = performance.now()
    const lines = await each(p, b, Math.min(N, b + BATCH), (i) => `set ${name(i)} 0 0 ${SIZE}\r\n${payload}\r\n`, isReply)
    errors += lines.filter((l) => l !== 'STORED').length
    rates.push(Math.min(BATCH, N - b) / ((performance.now() - t0) / 1000))
    process.stderr.write(`created ${Math.min(N, b + BATCH)}: ${Math.round(rates[rates.length - 1]!)} queues/s\n`)
  }
  await new Promise((r) => setTimeout(r, 1000))
  const rssFull = memoryMiB(s.proc.pid!).rss
  // `stats` while another connection gets from a queue, one request at a time: the p99 of those
  // gets is how long the reply's writing holds the event loop.
  const probe = await Pipe.open(s.port)
  const getMs: number[] = []
  let statsDone = false
  const prober = (async () => {
    while (!statsDone) {
      const g0 = performance.now()
      await probe.run(`get ${name(N - 1)}/peek\r\n`, 1, isEnd)
      getMs.push(performance.now() - g0)
    }
  })()
  await new Promise((r) => setTimeout(r, 200))
  let t0 = performance.now()
  const statLines = await p.run('stats\r\n', 1, isEnd)
  const statsMs = performance.now() - t0
  statsDone = true
  await prober
  probe.close()
  const sortedGets = [...getMs].sort((a, b) => a - b)
  const getP99 = sortedGets[Math.min(sortedGets.length - 1, Math.floor(sortedGets.length * 0.99))] ?? NaN
  const getMax = sortedGets[sortedGets.length - 1] ?? NaN
  const queueStats = statLines.filter((l) => / queue_.*_items /.test(l) && !/_(total|expired|mem)_items /.test(l)).length
  p.close()
  // a clean stop syncs every queue written since its last fsync (all of them under sync: never)
  t0 = performance.now()
  await stop(s)
  const shutdownMs = performance.now() - t0
  const files = readdirSync(spool).length

  s = await start(spool, config)
  const restartMs = s.startMs
  p = await Pipe.open(s.port)
  const rssRestart = memoryMiB(s.proc.pid!).rss
  const values = (await each(p, 0, N, (i) => `get ${name(i)}\r\nset ${name(i)} 0 0 ${SIZE}\r\n${payload}\r\n`, (l) => isEnd(l) || l === 'STORED', 2))
  const back = values.filter((l) => l.startsWith('VALUE ')).length
  const rssBeforeDelete = memoryMiB(s.proc.pid!).rss
  t0 = performance.now()
  const deleted = (await each(p, 0, N, (i) => `delete ${name(i)}\r\n`, isReply)).filter((l) => l === 'DELETED').length
  const deleteMs = performance.now() - t0
  // Freed pages go back after a major GC (the server's reclaim once the deletes go quiet, or V8's
  // memory reducer): the lowest RSS within 30 s, and when it came within 20 MiB of the start
  const { rss: rssAfterDelete, within20Ms } = await settledRss(s.proc.pid!, 30, rss0)
  const filesAfterDelete = readdirSync(spool).filter((f) => !f.startsWith('.')).length
  p.close()
  await stop(s)
  if (!KEEP) rmSync(spool, { recursive: true, force: true })

  const k = Math.max(1, Math.floor(rates.length / 4))
  const first = median(rates.slice(0, k))
  const last = median(rates.slice(-k))
  const result = {
    queues: N,
    itemBytes: SIZE,
    sync: SYNC,
    errors,
    rateFirst: Math.round(first),
    rateLast: Math.round(last),
    lastOverFirst: +(last / first).toFixed(2),
    rssStartMiB: Math.round(rss0),
    rssFullMiB: Math.round(rssFull),
    bytesPerQueue: Math.round(((rssFull - rss0) * 1024 * 1024) / N),
    statsMs: Math.round(statsMs),
    statsQueues: queueStats,
    statsGets: getMs.length,
    statsGetP99Ms: Math.round(getP99),
    statsGetMaxMs: Math.round(getMax),
    filesInSpool: files,
    shutdownMs: Math.round(shutdownMs),
    restartMs: Math.round(restartMs),
    rssAfterRestartMiB: Math.round(rssRestart),
    itemsBack: back,
    deleted,
    deleteMs: Math.round(deleteMs),
    rssBeforeDeleteMiB: Math.round(rssBeforeDelete),
    rssAfterDeleteMiB: Math.round(rssAfterDelete),
    within20MiBAfterMs: Math.round(within20Ms),
    filesAfterDelete,
  }
  process.stderr.write(
    `${N} queues x ${SIZE} B: first ${result.rateFirst}/s, last ${result.rateLast}/s (x${result.lastOverFirst}), ` +
      `${result.bytesPerQueue} B RSS/queue (${result.rssStartMiB} -> ${result.rssFullMiB} MiB), stats ${result.statsMs} ms (${queueStats} queues; ` +
      `concurrent get p99 ${result.statsGetP99Ms} ms, max ${result.statsGetMaxMs} ms over ${getMs.length}), ` +
      `shutdown ${result.shutdownMs} ms, restart ${result.restartMs} ms, ${back}/${N} items back, delete ${result.deleteMs} ms, RSS after delete ${result.rssAfterDeleteMiB} MiB ` +
      `(within 20 MiB of the start after ${result.within20MiBAfterMs} ms) ` +
      `(before ${result.rssBeforeDeleteMiB}), ${filesAfterDelete} files left, ${errors} errors\n`,
  )
  process.stdout.write(JSON.stringify(result) + '\n')
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
