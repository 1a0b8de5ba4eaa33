/**
 * starling_top: Starling's stats, live, like top.
 *
 *   starling_top [-h host] [-p port] [host:port ...] [--once] [--json] [-d seconds]
 *
 * The screen is drawn by renderTop(), a pure function of two stats snapshots (rates are the
 * difference between them), so it can be tested on fixed stats. main() does the I/O.
 */
import { parseArgs } from 'node:util'
// Only the library's public API: starling_top is a client like any other.
import { StarlingClient, queueStats, type ServerStats } from '../index.js'

export interface TopServerSample {
  server: string
  stats?: ServerStats
  /** Why this server could not be read. */
  error?: string
}

export interface TopSnapshot {
  /** When it was taken, ms since the epoch. */
  at: number
  servers: TopServerSample[]
}

export interface RenderOptions {
  /** Seconds between refreshes, shown in the title (live view only). */
  intervalSeconds?: number
}

const USAGE = `usage: starling_top [-h host] [-p port] [host:port ...] [--once] [--json] [-d seconds]

  -h, --host HOST      server host (default 127.0.0.1)
  -p, --port PORT      server port (default 22122)
  host:port ...        more servers
  -d, --delay SECONDS  refresh interval of the live view (default 1)
      --once           print one screen and exit
      --json           print the parsed stats as JSON and exit
      --help           this help
`

export interface TopArgs {
  servers: string[]
  once: boolean
  json: boolean
  delaySeconds: number
  help: boolean
}

export function parseTopArgs(argv: readonly string[]): TopArgs {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      host: { type: 'string', short: 'h' },
      port: { type: 'string', short: 'p' },
      delay: { type: 'string', short: 'd' },
      once: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: '?', default: false },
    },
  })
  const servers: string[] = []
  if (values.host !== undefined || values.port !== undefined || positionals.length === 0) {
    const port = values.port ?? '22122'
    if (!/^\d{1,5}$/.test(port) || Number(port) === 0 || Number(port) > 65535) throw new Error(`bad port ${JSON.stringify(port)}`)
    const host = values.host ?? '127.0.0.1'
    servers.push(host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`)
  }
  for (const p of positionals) servers.push(/:\d+$/.test(p) || p.startsWith('[') ? p : `${p}:22122`)
  const delaySeconds = values.delay === undefined ? 1 : Number(values.delay)
  if (!(delaySeconds > 0)) throw new Error(`bad delay ${JSON.stringify(values.delay)}`)
  return { servers, once: values.once ?? false, json: values.json ?? false, delaySeconds, help: values.help ?? false }
}

// ---- rendering (pure) ------------------------------------------------------------------------

function num(stats: ServerStats | undefined, name: string): number | undefined {
  const v = stats?.[name]
  return typeof v === 'number' ? v : undefined
}

/** Per-second rate of a counter between two samples, or undefined without an earlier one. */
function rate(now: number | undefined, before: number | undefined, seconds: number): number | undefined {
  if (now === undefined || before === undefined || seconds <= 0) return undefined
  return Math.max(0, now - before) / seconds
}

export function formatRate(r: number | undefined): string {
  if (r === undefined) return '-'
  return r >= 1000 ? Math.round(r).toString() : r.toFixed(1)
}

export function formatBytes(n: number | undefined): string {
  if (n === undefined) return '-'
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`
}

export function formatUptime(seconds: number | undefined): string {
  if (seconds === undefined) return '-'
  const d = Math.floor(seconds / 86400)
  const h = Math.floor((seconds % 86400) / 3600)
  const m = Math.floor((seconds % 3600) / 60)
  const s = Math.floor(seconds % 60)
  const hms = `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`
  return d > 0 ? `${d}d ${hms}` : hms
}

function table(rows: string[][], rightAligned: boolean[]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  return rows.map((r) =>
    r
      .map((cell, c) => (rightAligned[c] ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd(),
  )
}

/** One screen: a header per server, then its queues with rates since `previous`. */
export function renderTop(current: TopSnapshot, previous?: TopSnapshot, options: RenderOptions = {}): string {
  const seconds = previous === undefined ? 0 : (current.at - previous.at) / 1000
  const clock = new Date(current.at).toISOString().slice(11, 19)
  const lines: string[] = []
  const refresh = options.intervalSeconds === undefined ? '' : `  refresh ${options.intervalSeconds}s`
  lines.push(`starling_top - ${clock} UTC${refresh}  servers ${current.servers.length}`)
  let totalItems = 0
  let totalConns = 0
  for (const sample of current.servers) {
    lines.push('')
    const stats = sample.stats
    if (stats === undefined) {
      lines.push(`${sample.server}  DOWN  ${sample.error ?? 'no reply'}`)
      continue
    }
    const before = previous?.servers.find((s) => s.server === sample.server)?.stats
    totalItems += num(stats, 'curr_items') ?? 0
    totalConns += num(stats, 'curr_connections') ?? 0
    lines.push(
      `${sample.server}  version ${stats.version ?? '-'}  pid ${stats.pid ?? '-'}  up ${formatUptime(num(stats, 'uptime'))}` +
        `  conns ${num(stats, 'curr_connections') ?? '-'} (total ${num(stats, 'total_connections') ?? '-'})`,
    )
    lines.push(
      `items ${num(stats, 'curr_items') ?? '-'} (total ${num(stats, 'total_items') ?? '-'})  bytes ${formatBytes(num(stats, 'bytes'))}` +
        `  sets/s ${formatRate(rate(num(stats, 'cmd_set'), num(before, 'cmd_set'), seconds))}` +
        `  gets/s ${formatRate(rate(num(stats, 'cmd_get'), num(before, 'cmd_get'), seconds))}` +
        `  hits ${num(stats, 'get_hits') ?? '-'}  misses ${num(stats, 'get_misses') ?? '-'}`,
    )
    const queues = queueStats(stats)
    const beforeQueues = before === undefined ? {} : queueStats(before)
    const names = Object.keys(queues).sort()
    if (names.length === 0) {
      lines.push('(no queues)')
      continue
    }
    const rows: string[][] = [['QUEUE', 'ITEMS', 'TOTAL', 'IN/s', 'OUT/s', 'AGE ms', 'LOGSIZE', 'EXPIRED']]
    for (const name of names) {
      const q = queues[name]!
      const b = beforeQueues[name]
      const inRate = rate(q.total_items, b?.total_items, seconds)
      // Items that left = items that came in - growth - expired.
      const out =
        b === undefined || seconds <= 0
          ? undefined
          : Math.max(0, q.total_items - b.total_items - (q.items - b.items) - (q.expired_items - b.expired_items)) / seconds
      rows.push([name, String(q.items), String(q.total_items), formatRate(inRate), formatRate(out), String(q.age), formatBytes(q.logsize), String(q.expired_items)])
    }
    lines.push(...table(rows, [false, true, true, true, true, true, true, true]))
  }
  if (current.servers.length > 1) {
    lines.push('')
    lines.push(`all servers: items ${totalItems}  connections ${totalConns}`)
  }
  return lines.join('\n') + '\n'
}

// ---- I/O ---------------------------------------------------------------------------------------

export async function takeSnapshot(clients: ReadonlyArray<{ server: string; client: StarlingClient }>): Promise<TopSnapshot> {
  const servers = await Promise.all(
    clients.map(async ({ server, client }): Promise<TopServerSample> => {
      try {
        const stats = Object.values(await client.stats())[0]
        return stats === undefined ? { server, error: 'no reply' } : { server, stats }
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err)
        return { server, error: message.startsWith(`${server}: `) ? message.slice(server.length + 2) : message }
      }
    }),
  )
  return { at: Date.now(), servers }
}

export interface TopIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean }
  stderr: NodeJS.WritableStream
  stdin?: NodeJS.ReadStream
}

/** Run starling_top; resolves with the exit status. */
export async function main(argv: readonly string[], io: TopIO = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin }): Promise<number> {
  let args: TopArgs
  try {
    args = parseTopArgs(argv)
  } catch (err) {
    io.stderr.write(`starling_top: ${(err as Error).message}\n${USAGE}`)
    return 1
  }
  if (args.help) {
    io.stdout.write(USAGE)
    return 0
  }
  const clients = args.servers.map((server) => ({
    server,
    client: new StarlingClient(server, { timeoutMs: 3000, connectTimeoutMs: 2000, retryDelayMs: 0 }),
  }))
  const closeAll = async (): Promise<void> => {
    await Promise.all(clients.map(({ client }) => client.close()))
  }
  try {
    const first = await takeSnapshot(clients)
    const down = first.servers.filter((s) => s.stats === undefined)
    const mustAllAnswer = args.once || args.json
    if (down.length > 0 && (mustAllAnswer || down.length === first.servers.length)) {
      for (const s of down) io.stderr.write(`starling_top: cannot reach ${s.server}: ${s.error ?? 'no reply'}\n`)
      return 1
    }
    if (args.json) {
      const out: Record<string, unknown> = {}
      for (const s of first.servers) out[s.server] = { stats: s.stats, queues: queueStats(s.stats!) }
      io.stdout.write(JSON.stringify(out, null, 2) + '\n')
      return 0
    }
    if (args.once) {
      io.stdout.write(renderTop(first))
      return 0
    }
    return await live(args, clients, first, io)
  } finally {
    await closeAll()
  }
}

async function live(args: TopArgs, clients: ReadonlyArray<{ server: string; client: StarlingClient }>, first: TopSnapshot, io: TopIO): Promise<number> {
  const tty = io.stdout.isTTY === true
  const draw = (text: string): void => {
    io.stdout.write(tty ? `\x1b[H\x1b[2J${text}` : `${text}\n`)
  }
  let stop!: () => void
  const stopped = new Promise<void>((resolve) => (stop = resolve))
  const onSignal = (): void => stop()
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const stdin = io.stdin
  const keys = (data: Buffer): void => {
    const k = data.toString()
    if (k === 'q' || k === 'Q' || k === '\u0003') stop()
  }
  if (stdin?.isTTY) {
    stdin.setRawMode(true)
    stdin.resume()
    stdin.on('data', keys)
  }
  let previous: TopSnapshot | undefined
  let current = first
  try {
    for (;;) {
      draw(renderTop(current, previous, { intervalSeconds: args.delaySeconds }) + (tty ? '\n(q to quit)' : ''))
      let timer: NodeJS.Timeout | undefined
      const tick = new Promise<'tick'>((resolve) => (timer = setTimeout(() => resolve('tick'), args.delaySeconds * 1000)))
      const why = await Promise.race([tick, stopped.then(() => 'stop' as const)])
      clearTimeout(timer)
      if (why === 'stop') return 0
      previous = current
      current = await takeSnapshot(clients)
    }
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    if (stdin?.isTTY) {
      stdin.off('data', keys)
      stdin.setRawMode(false)
      stdin.pause()
    }
    if (tty) io.stdout.write('\n')
  }
}
