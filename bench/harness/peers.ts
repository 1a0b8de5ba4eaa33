/**
 * The servers under test. Each peer is started by the benchmark itself on a free loopback port with
 * its own temp directory, and stopped afterwards — also on errors and SIGINT (see `stopAllPeers`).
 * A peer whose program is not installed is skipped with a printed line.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { ProtocolName } from './queueClient.js'

export const HOST = '127.0.0.1'
const READY_TIMEOUT_MS = 20_000
const STOP_TIMEOUT_MS = 15_000

/** The repository root (dist/bench/harness/peers.js → ../../..). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
export const OUR_SERVER = join(ROOT, 'dist', 'src', 'server', 'main.js')

export type Durability = 'none' | 'periodic' | 'always'

export interface PeerDef {
  name: string
  /** What the table says about it. */
  description: string
  /** Executable that must exist (a PATH name or an absolute path). */
  program: string
  durability: Durability
  protocol: ProtocolName
  /** Plain memcached: one key per item (the protocol ceiling), not a queue. */
  keyed: boolean
  /** Has a blocking dequeue (Kestrel /t=, BRPOP, reserve-with-timeout). */
  canBlock: boolean
  /** Also speaks the memcached binary protocol. */
  speaksBinary: boolean
  isOurs: boolean
  start(options: StartOptions): Promise<RunningPeer>
}

export interface StartOptions {
  /** Reuse this data directory (restart/replay); otherwise a fresh temp dir is made and removed. */
  dataDir?: string
  /** Extra node flags for our server (e.g. --cpu-prof). */
  nodeArgs?: string[]
}

export interface RunningPeer {
  def: PeerDef
  pid: number
  host: string
  port: number
  dataDir: string
  /** Spawn to ready, in ms (for our server: to the "listening" log line). */
  startMs: number
  /** The last lines the process printed (for error reports). */
  recentOutput(): string
  /** SIGTERM, wait (bounded), SIGKILL if needed; removes the data dir unless it was given. */
  stop(options?: { keepData?: boolean }): Promise<void>
}

const live = new Set<ChildProcess>()
const ownedDirs = new Set<string>()

/** Synchronous last resort (process 'exit', signals): SIGKILL every peer still running, remove temp dirs. */
export function killAllPeersSync(): void {
  for (const proc of live) {
    try {
      proc.kill('SIGKILL')
    } catch {
      // already gone
    }
  }
  live.clear()
  for (const dir of ownedDirs) rmSync(dir, { recursive: true, force: true })
  ownedDirs.clear()
}

function makeDataDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `bench-${name}-`))
  ownedDirs.add(dir)
  return dir
}

function removeDataDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
  ownedDirs.delete(dir)
}

/** For workloads that keep a data dir across restarts: remove it now and forget it. */
export function removePeerData(dir: string): void {
  removeDataDir(dir)
}

export function programAvailable(program: string): boolean {
  const candidates = program.includes('/')
    ? [program]
    : (process.env.PATH ?? '/usr/bin:/bin').split(delimiter).concat(['/usr/sbin', '/sbin']).map((d) => join(d, program))
  return candidates.some((file) => {
    try {
      accessSync(file, constants.X_OK)
      return true
    } catch {
      return false
    }
  })
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, HOST, () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

interface SpawnedProcess {
  proc: ChildProcess
  exited: Promise<number | null>
  lines: string[]
  onLine(listener: (line: string) => void): void
}

function spawnPeer(command: string, args: string[]): SpawnedProcess {
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  live.add(proc)
  const lines: string[] = []
  const listeners: Array<(line: string) => void> = []
  const exited = new Promise<number | null>((resolve) => {
    proc.once('exit', (code, signal) => {
      live.delete(proc)
      resolve(code ?? (signal ? -1 : null))
    })
    proc.once('error', (err) => {
      live.delete(proc)
      lines.push(`spawn error: ${err.message}`)
      resolve(-1)
    })
  })
  for (const stream of [proc.stdout!, proc.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      lines.push(line)
      if (lines.length > 60) lines.shift()
      for (const l of listeners) l(line)
    })
  }
  return { proc, exited, lines, onLine: (l) => listeners.push(l) }
}

async function stopProcess(p: SpawnedProcess): Promise<void> {
  if (p.proc.exitCode !== null || p.proc.signalCode !== null) return
  p.proc.kill('SIGTERM')
  const timer = setTimeout(() => p.proc.kill('SIGKILL'), STOP_TIMEOUT_MS)
  await p.exited
  clearTimeout(timer)
}

function makeRunning(
  def: PeerDef,
  p: SpawnedProcess,
  port: number,
  dataDir: string,
  ownsDir: boolean,
  startMs: number,
): RunningPeer {
  return {
    def,
    pid: p.proc.pid!,
    host: HOST,
    port,
    dataDir,
    startMs,
    recentOutput: () => p.lines.slice(-20).join('\n'),
    async stop(options = {}) {
      await stopProcess(p)
      if (ownsDir && !options.keepData) removeDataDir(dataDir)
    },
  }
}

/** Starts an external program on a free port and waits until it accepts connections. */
async function startExternal(
  def: PeerDef,
  options: StartOptions,
  argsFor: (port: number, dir: string) => string[],
): Promise<RunningPeer> {
  const ownsDir = options.dataDir === undefined
  const dir = options.dataDir ?? makeDataDir(def.name)
  let lastError = ''
  // A free port can be taken between probing and binding: retry a few times.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const started = performance.now()
    const p = spawnPeer(def.program, argsFor(port, dir))
    let exited = false
    void p.exited.then(() => (exited = true))
    const deadline = Date.now() + READY_TIMEOUT_MS
    while (!exited && Date.now() < deadline) {
      if (await canConnect(port)) {
        return makeRunning(def, p, port, dir, ownsDir, performance.now() - started)
      }
      await new Promise((r) => setTimeout(r, 20))
    }
    lastError = `${def.name} did not start (attempt ${attempt + 1}):\n${p.lines.slice(-10).join('\n')}`
    await stopProcess(p)
  }
  if (ownsDir) removeDataDir(dir)
  throw new Error(lastError)
}

async function startOurs(def: PeerDef, sync: 'always' | 'never', options: StartOptions): Promise<RunningPeer> {
  const ownsDir = options.dataDir === undefined
  const dir = options.dataDir ?? makeDataDir(def.name)
  const spool = join(dir, 'spool')
  const config = join(dir, 'config.yml')
  writeFileSync(config, `starling:\n  sync: ${sync}\n`)
  const started = performance.now()
  const p = spawnPeer(process.execPath, [
    ...(options.nodeArgs ?? []),
    OUR_SERVER,
    '-h',
    HOST,
    '-p',
    '0',
    '-q',
    spool,
    '-f',
    config,
  ])
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${def.name} did not log "listening" in time`)), 10 * 60_000)
    p.onLine((line) => {
      if (!line.includes('"listening"')) return
      try {
        const entry = JSON.parse(line) as { msg?: unknown; port?: unknown }
        if (entry.msg === 'listening' && typeof entry.port === 'number') {
          clearTimeout(timer)
          resolve(entry.port)
        }
      } catch {
        // not JSON: keep waiting
      }
    })
    void p.exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`${def.name} exited (${code}) before listening:\n${p.lines.slice(-10).join('\n')}`))
    })
  }).catch(async (err: Error) => {
    await stopProcess(p)
    if (ownsDir) removeDataDir(dir)
    throw err
  })
  return makeRunning(def, p, port, dir, ownsDir, performance.now() - started)
}

export const PEERS: PeerDef[] = [
  {
    name: 'memcached',
    description: 'memcached 1.6, set/get of distinct keys: protocol ceiling, no queue, no durability',
    program: 'memcached',
    durability: 'none',
    protocol: 'memcache-text',
    keyed: true,
    canBlock: false,
    speaksBinary: true,
    isOurs: false,
    start(options) {
      // memcached refuses to run as root without -u.
      const asRoot = process.getuid?.() === 0 ? ['-u', 'root'] : []
      return startExternal(this, options, (port) => [...asRoot, '-l', HOST, '-p', String(port), '-U', '0', '-m', '4096', '-c', '4096', '-t', '2'])
    },
  },
  ...(['everysec', 'always'] as const).map(
    (fsync): PeerDef => ({
      name: `redis-${fsync}`,
      description: `redis-server, list per queue, AOF appendfsync ${fsync}`,
      program: 'redis-server',
      durability: fsync === 'always' ? 'always' : 'periodic',
      protocol: 'resp',
      keyed: false,
      canBlock: true,
      speaksBinary: false,
      isOurs: false,
      start(options) {
        return startExternal(this, options, (port, dir) => [
          '--bind', HOST, '--port', String(port), '--dir', dir, '--save', '', '--appendonly', 'yes',
          '--appendfsync', fsync, '--protected-mode', 'no', '--maxclients', '4096', '--daemonize', 'no', '--logfile', '',
        ])
      },
    }),
  ),
  ...(['binlog', 'f0'] as const).map(
    (mode): PeerDef => ({
      name: mode === 'binlog' ? 'beanstalkd' : 'beanstalkd-f0',
      description: mode === 'binlog' ? 'beanstalkd -b (binlog, fsync every 50 ms)' : 'beanstalkd -b -f 0 (fsync every write)',
      program: 'beanstalkd',
      durability: mode === 'f0' ? 'always' : 'periodic',
      protocol: 'beanstalk',
      keyed: false,
      canBlock: true,
      speaksBinary: false,
      isOurs: false,
      start(options) {
        return startExternal(this, options, (port, dir) => [
          '-l', HOST, '-p', String(port), '-b', dir, '-z', String(1024 * 1024), ...(mode === 'f0' ? ['-f', '0'] : []),
        ])
      },
    }),
  ),
  ...(['never', 'always'] as const).map(
    (sync): PeerDef => ({
      name: `ours-${sync}`,
      description: `this server, memcached text protocol, sync: ${sync}`,
      program: OUR_SERVER,
      durability: sync === 'always' ? 'always' : 'periodic',
      protocol: 'memcache-text',
      keyed: false,
      canBlock: true,
      speaksBinary: true,
      isOurs: true,
      start(options) {
        return startOurs(this, sync, options)
      },
    }),
  ),
]

/** Whether `def` matches a --only selector: its exact name or a family prefix (`redis`, `ours`). */
export function peerSelected(def: PeerDef, only: string[] | null): boolean {
  if (only === null) return true
  return only.some((s) => def.name === s || def.name.startsWith(`${s}-`))
}

export function peerAvailable(def: PeerDef): boolean {
  return def.isOurs ? existsSync(def.program) : programAvailable(def.program)
}
