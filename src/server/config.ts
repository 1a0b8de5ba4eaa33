/**
 * Configuration: every default and every limit lives here, once. The YAML file has Starling's keys
 * under a top-level `starling:` key, plus this project's own; command-line flags override it.
 * Anything wrong is a ConfigError with one line naming the key — the CLI prints it and exits 1.
 */
import { readFileSync } from 'node:fs'
import { load } from 'js-yaml'
import { ConfigError } from './errors.js'
import { defaultMaxOpenJournals, MIN_OPEN_JOURNALS } from './journal/fdCache.js'
import type { SyncPolicy } from './journal/types.js'

const MiB = 1024 * 1024

export interface QueueSettings {
  /** Most items the queue may hold; 0 = no limit. */
  maxItems: number
  /** Most payload bytes the queue may hold; 0 = no limit. */
  maxSize: number
  /** Largest item accepted by this queue. */
  maxItemSize: number
  /** Items older than this expire; 0 = never. */
  maxAgeMs: number
  /** When full, drop the oldest item instead of refusing the set. */
  discardOldWhenFull: boolean
  /** Durability of this queue's journal. */
  sync: SyncPolicy
  /** Expired items move to this queue instead of vanishing. */
  expireTo: string | null
  /** Payload bytes kept in memory; beyond it, items stay on disk (read-behind). */
  maxMemorySize: number
  /** Journal segment size / reset threshold. */
  maxJournalSize: number
  /** sync always: ms an empty get may wait on while later fsyncs are in flight (engine/emptyPoll.ts). */
  maxPollWaitMs: number
}

export interface AuthConfig {
  /** user → password, plain or `scrypt$<salt-hex>$<hash-hex>`. */
  users: Record<string, string>
  allowTextUnauthenticated: boolean
  /** Failed logins on one connection before it is closed (auth.max_login_failures). */
  maxLoginFailures: number
}

export interface TlsConfig {
  port: number
  host: string | null
  cert: string
  key: string
  ca: string | null
  requireClientCert: boolean
}

/** The HTTP gateway, metrics and dashboard (off unless `http:` is set). */
export interface HttpConfig {
  port: number
  /** Listen address; null = the server's host. */
  host: string | null
  /** Serve HTTPS with the certificate of `tls:`. */
  tls: boolean
  /** An open read not closed or aborted within this long goes back to the queue. */
  openTimeoutMs: number
  /** Open reads (receipts) one user may hold at once, waiting opens included. */
  maxOpenReceipts: number
  /** A client must send its request headers within this long. */
  headerTimeoutMs: number
  /** ... and the whole request, body included, within this long. */
  maxBodyWaitMs: number
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs: number
}

export interface ServerConfig {
  host: string
  port: number
  queuePath: string
  pidFile: string | null
  daemonize: boolean
  user: string | null
  group: string | null
  logFile: string | null
  logLevel: string
  /** Disconnect clients idle this long; 0 disables. */
  timeoutSec: number
  syslogChannel: string | null
  /** Protocol limits (memcached's defaults). */
  maxItemSize: number
  maxKeyLength: number
  maxLineLength: number
  maxConnections: number
  /** Stop reading a connection while this many reply bytes wait for it, or this many replies. */
  maxOutputBytes: number
  maxPendingReplies: number
  /** All connections' partially received request frames together (see protocol/inputBudget.ts); 0 = unlimited. */
  maxInputBytes: number
  /** All queues' in-memory payload together; past it new items stay on disk. */
  maxMemoryTotal: number
  /** Most queues; a set creating one more gets `SERVER_ERROR too many queues`. 0 = no limit. */
  maxQueues: number
  /** Journal files kept open at once (an LRU; the others are reopened on demand). */
  maxOpenJournals: number
  /** Deleted queues after which, once deletes go quiet, a full GC gives memory back; 0 = never. */
  reclaimAfterDeletes: number
  enableFlushAll: boolean
  enableShutdown: boolean
  queueDefaults: QueueSettings
  /** Per-queue overrides, by exact queue name. */
  queues: Record<string, Partial<QueueSettings>>
  auth: AuthConfig | null
  tls: TlsConfig | null
  http: HttpConfig | null
}

export const DEFAULT_HTTP: Readonly<Omit<HttpConfig, 'port'>> = Object.freeze({
  host: null,
  tls: false,
  openTimeoutMs: 30_000,
  maxOpenReceipts: 1000,
  headerTimeoutMs: 10_000,
  maxBodyWaitMs: 30_000,
  keepAliveTimeoutMs: 5_000,
})

export const DEFAULT_QUEUE_SETTINGS: Readonly<QueueSettings> = Object.freeze({
  maxItems: 0,
  maxSize: 0,
  maxItemSize: 1 * MiB,
  maxAgeMs: 0,
  discardOldWhenFull: false,
  sync: 'never' as SyncPolicy,
  expireTo: null,
  maxMemorySize: 64 * MiB,
  maxJournalSize: 16 * MiB,
  maxPollWaitMs: 50,
})

export function defaultConfig(): ServerConfig {
  return {
    host: '127.0.0.1',
    port: 22122,
    queuePath: './spool',
    pidFile: null,
    daemonize: false,
    user: null,
    group: null,
    logFile: null,
    logLevel: 'info',
    timeoutSec: 0,
    syslogChannel: null,
    maxItemSize: 1 * MiB,
    maxKeyLength: 250,
    maxLineLength: 2048,
    maxConnections: 10_000,
    maxOutputBytes: 4 * MiB,
    maxPendingReplies: 256,
    maxInputBytes: 64 * MiB,
    maxMemoryTotal: 512 * MiB,
    maxQueues: 250_000,
    maxOpenJournals: defaultMaxOpenJournals(),
    reclaimAfterDeletes: 1000,
    enableFlushAll: false,
    enableShutdown: false,
    queueDefaults: { ...DEFAULT_QUEUE_SETTINGS },
    queues: {},
    auth: null,
    tls: null,
    http: null,
  }
}

/** memoryReclaim.ts: a burst of deletes is over after this long without one; one reclaim at most this often. */
export const RECLAIM_IDLE_MS = 1500
export const RECLAIM_MIN_INTERVAL_MS = 10_000

/** The pid file used when daemonizing without -P (Starling's default). */
export const DEFAULT_DAEMON_PID_FILE = '/var/run/starling.pid'

// ---------------------------------------------------------------------------------------------
// Value checkers: each returns the typed value or throws a ConfigError naming the key.

type Raw = Record<string, unknown>

function isPlainObject(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function str(key: string, v: unknown): string {
  if (typeof v === 'string' && v.length > 0) return v
  if (typeof v === 'number') return String(v)
  throw new ConfigError(`config key ${key} must be a non-empty string`)
}

function int(key: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : v
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`config key ${key} must be an integer from ${min} to ${max}`)
  }
  return n
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: MiB, mb: MiB, mib: MiB, g: 1024 * MiB, gb: 1024 * MiB, gib: 1024 * MiB }

/** A byte size: an integer or a string like `16MB`, `64 MiB`, `512k`. */
function size(key: string, v: unknown): number {
  if (typeof v === 'number') return int(key, v, 0)
  if (typeof v === 'string') {
    const m = /^\s*(\d+)\s*([a-zA-Z]*)\s*$/.exec(v)
    const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined
    if (m && unit !== undefined) return Number(m[1]) * unit
  }
  throw new ConfigError(`config key ${key} must be a size in bytes (e.g. 1048576 or "16MB")`)
}

function bool(key: string, v: unknown): boolean {
  if (typeof v === 'boolean') return v
  if (v === 'true' || v === 'yes' || v === 1) return true
  if (v === 'false' || v === 'no' || v === 0) return false
  throw new ConfigError(`config key ${key} must be true or false`)
}

export function parseSync(key: string, v: unknown): SyncPolicy {
  if (v === 'always' || v === 'never') return v
  if (typeof v === 'number' || (typeof v === 'string' && /^\d+$/.test(v))) {
    const ms = int(key, v, 1, 3_600_000)
    return ms
  }
  throw new ConfigError(`config key ${key} must be always, never or a number of milliseconds`)
}

const LOG_LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])

function logLevel(key: string, v: unknown): string {
  const s = str(key, v).toLowerCase()
  const mapped = s === 'warning' ? 'warn' : s
  if (!LOG_LEVELS.has(mapped)) throw new ConfigError(`config key ${key} must be one of ${[...LOG_LEVELS].join(', ')}`)
  return mapped
}

/** Per-queue keys, accepted both as defaults (top level) and under `queues.<name>`. */
const QUEUE_KEYS: Record<string, (key: string, v: unknown, out: Partial<QueueSettings>) => void> = {
  max_items: (k, v, o) => (o.maxItems = int(k, v, 0)),
  max_size: (k, v, o) => (o.maxSize = size(k, v)),
  max_item_size: (k, v, o) => (o.maxItemSize = Math.max(1, size(k, v))),
  max_age: (k, v, o) => (o.maxAgeMs = int(k, v, 0)),
  discard_old_when_full: (k, v, o) => (o.discardOldWhenFull = bool(k, v)),
  sync: (k, v, o) => (o.sync = parseSync(k, v)),
  expire_to: (k, v, o) => (o.expireTo = str(k, v)),
  max_memory_size: (k, v, o) => (o.maxMemorySize = size(k, v)),
  max_journal_size: (k, v, o) => (o.maxJournalSize = Math.max(4096, size(k, v))),
  max_poll_wait: (k, v, o) => (o.maxPollWaitMs = int(k, v, 0, 60_000)),
}

/** An empty YAML section (`queues:` with every child commented out) is null: read it as {}. */
function section(v: unknown): unknown {
  return v === null ? {} : v
}

function parseQueueSettings(prefix: string, raw: unknown): Partial<QueueSettings> {
  raw = section(raw)
  if (!isPlainObject(raw)) throw new ConfigError(`config key ${prefix} must be a map of queue settings`)
  const out: Partial<QueueSettings> = {}
  for (const [k, v] of Object.entries(raw)) {
    const apply = QUEUE_KEYS[k]
    if (!apply) throw new ConfigError(`unknown config key ${prefix}.${k}`)
    apply(`${prefix}.${k}`, v, out)
  }
  return out
}

/** Failed logins a connection may make before it is closed (guessing passwords costs reconnects). */
export const DEFAULT_MAX_LOGIN_FAILURES = 3

function parseAuth(raw: unknown): AuthConfig {
  if (!isPlainObject(raw)) throw new ConfigError('config key starling.auth must be a map')
  let users: Record<string, string> = {}
  let allowTextUnauthenticated = false
  let maxLoginFailures = DEFAULT_MAX_LOGIN_FAILURES
  for (const [k, v] of Object.entries(raw)) {
    if (k === 'users') {
      if (!isPlainObject(v) || Object.keys(v).length === 0) {
        throw new ConfigError('config key starling.auth.users must be a map of user: password')
      }
      users = Object.fromEntries(Object.entries(v).map(([u, p]) => [u, str(`starling.auth.users.${u}`, p)]))
    } else if (k === 'allow_text_unauthenticated') {
      allowTextUnauthenticated = bool(`starling.auth.${k}`, v)
    } else if (k === 'max_login_failures') {
      maxLoginFailures = int(`starling.auth.${k}`, v, 1)
    } else {
      throw new ConfigError(`unknown config key starling.auth.${k}`)
    }
  }
  if (Object.keys(users).length === 0) throw new ConfigError('config key starling.auth.users is required')
  return { users, allowTextUnauthenticated, maxLoginFailures }
}

function parseTls(raw: unknown): TlsConfig {
  if (!isPlainObject(raw)) throw new ConfigError('config key starling.tls must be a map')
  const tls: Partial<TlsConfig> = { host: null, ca: null, requireClientCert: false }
  for (const [k, v] of Object.entries(raw)) {
    const key = `starling.tls.${k}`
    if (k === 'port') tls.port = int(key, v, 0, 65535)
    else if (k === 'host') tls.host = str(key, v)
    else if (k === 'cert') tls.cert = str(key, v)
    else if (k === 'key') tls.key = str(key, v)
    else if (k === 'ca') tls.ca = str(key, v)
    else if (k === 'require_client_cert') tls.requireClientCert = bool(key, v)
    else throw new ConfigError(`unknown config key ${key}`)
  }
  for (const required of ['port', 'cert', 'key'] as const) {
    if (tls[required] === undefined) throw new ConfigError(`config key starling.tls.${required} is required`)
  }
  return tls as TlsConfig
}

const HTTP_SECONDS: Record<string, 'openTimeoutMs' | 'headerTimeoutMs' | 'maxBodyWaitMs' | 'keepAliveTimeoutMs'> = {
  open_timeout: 'openTimeoutMs',
  header_timeout: 'headerTimeoutMs',
  max_body_wait: 'maxBodyWaitMs',
  keep_alive_timeout: 'keepAliveTimeoutMs',
}

function parseHttp(raw: unknown): HttpConfig {
  if (!isPlainObject(raw)) throw new ConfigError('config key starling.http must be a map')
  const http: Partial<HttpConfig> = { ...DEFAULT_HTTP }
  for (const [k, v] of Object.entries(raw)) {
    const key = `starling.http.${k}`
    if (k === 'port') http.port = int(key, v, 0, 65535)
    else if (k === 'host') http.host = str(key, v)
    else if (k === 'tls') http.tls = bool(key, v)
    else if (k === 'max_open_receipts') http.maxOpenReceipts = int(key, v, 1)
    else if (HTTP_SECONDS[k]) http[HTTP_SECONDS[k]!] = int(key, v, 1, 86_400) * 1000
    else throw new ConfigError(`unknown config key ${key}`)
  }
  if (http.port === undefined) throw new ConfigError('config key starling.http.port is required')
  return http as HttpConfig
}

/** Server-wide keys. Starling's own names first, then this project's. */
const SERVER_KEYS: Record<string, (key: string, v: unknown, c: ServerConfig) => void> = {
  port: (k, v, c) => (c.port = int(k, v, 0, 65535)),
  host: (k, v, c) => (c.host = str(k, v)),
  queue_path: (k, v, c) => (c.queuePath = str(k, v)),
  path: (k, v, c) => (c.queuePath = str(k, v)),
  pid_file: (k, v, c) => (c.pidFile = str(k, v)),
  timeout: (k, v, c) => (c.timeoutSec = int(k, v, 0)),
  logger: (k, v, c) => (c.logFile = str(k, v)),
  log_file: (k, v, c) => (c.logFile = str(k, v)),
  log_level: (k, v, c) => (c.logLevel = logLevel(k, v)),
  daemonize: (k, v, c) => (c.daemonize = bool(k, v)),
  user: (k, v, c) => (c.user = str(k, v)),
  group: (k, v, c) => (c.group = str(k, v)),
  syslog_channel: (k, v, c) => (c.syslogChannel = str(k, v)),
  max_line_length: (k, v, c) => (c.maxLineLength = int(k, v, 256, 1 << 20)),
  max_connections: (k, v, c) => (c.maxConnections = int(k, v, 1)),
  max_output_bytes: (k, v, c) => (c.maxOutputBytes = Math.max(65536, size(k, v))),
  max_pending_replies: (k, v, c) => (c.maxPendingReplies = int(k, v, 1)),
  max_input_bytes: (k, v, c) => (c.maxInputBytes = size(k, v)),
  max_memory_total: (k, v, c) => (c.maxMemoryTotal = size(k, v)),
  max_queues: (k, v, c) => (c.maxQueues = int(k, v, 0)),
  max_open_journals: (k, v, c) => (c.maxOpenJournals = int(k, v, MIN_OPEN_JOURNALS)),
  reclaim_after_deletes: (k, v, c) => (c.reclaimAfterDeletes = int(k, v, 0)),
  enable_flush_all: (k, v, c) => (c.enableFlushAll = bool(k, v)),
  enable_shutdown: (k, v, c) => (c.enableShutdown = bool(k, v)),
  auth: (_k, v, c) => (c.auth = parseAuth(section(v))),
  tls: (_k, v, c) => (c.tls = parseTls(section(v))),
  http: (_k, v, c) => (c.http = parseHttp(section(v))),
  queues: (k, v, c) => {
    v = section(v)
    if (!isPlainObject(v)) throw new ConfigError(`config key ${k} must be a map of queue name: settings`)
    for (const [name, settings] of Object.entries(v)) c.queues[name] = parseQueueSettings(`${k}.${name}`, settings)
  },
}

/** Apply the `starling:` section of a parsed YAML document onto `config`. */
export function applyConfigDocument(config: ServerConfig, doc: unknown): ServerConfig {
  if (doc === null || doc === undefined) return config
  if (!isPlainObject(doc)) throw new ConfigError('config file must be a YAML map with a top-level starling: key')
  for (const k of Object.keys(doc)) {
    if (k !== 'starling') throw new ConfigError(`unknown config key ${k} (settings live under starling:)`)
  }
  const section = doc.starling
  if (section === null || section === undefined) return config
  if (!isPlainObject(section)) throw new ConfigError('config key starling must be a map')
  for (const [k, v] of Object.entries(section)) {
    const key = `starling.${k}`
    const server = SERVER_KEYS[k]
    const queue = QUEUE_KEYS[k]
    if (server) server(key, v, config)
    else if (queue) queue(key, v, config.queueDefaults)
    else throw new ConfigError(`unknown config key ${key}`)
  }
  if (config.http?.tls && !config.tls) throw new ConfigError('config key starling.http.tls needs starling.tls (its certificate)')
  // The protocol's item limit is the largest any queue accepts.
  config.maxItemSize = Math.max(
    config.queueDefaults.maxItemSize,
    ...Object.values(config.queues).map((q) => q.maxItemSize ?? 0),
  )
  // Below this, a largest item that arrives in pieces could never fit the budget.
  if (config.maxInputBytes !== 0 && config.maxInputBytes < 2 * config.maxItemSize) {
    throw new ConfigError(
      `config key starling.max_input_bytes (${config.maxInputBytes}) must be 0 (unlimited) or at least twice max_item_size (${config.maxItemSize})`,
    )
  }
  return config
}

export function loadConfigFile(path: string, config: ServerConfig = defaultConfig()): ServerConfig {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
  }
  let doc: unknown
  try {
    doc = load(text)
  } catch (err) {
    const mark = (err as { mark?: { line: number } }).mark
    throw new ConfigError(`config file ${path} is not valid YAML${mark ? ` (line ${mark.line + 1})` : ''}`)
  }
  return applyConfigDocument(config, doc)
}

/** Effective settings of one queue: defaults, then its own overrides. */
export function queueSettings(config: ServerConfig, queue: string): QueueSettings {
  const own = config.queues[queue]
  return own ? { ...config.queueDefaults, ...own } : config.queueDefaults
}
