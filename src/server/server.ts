/**
 * The server: replays the spool, listens (plain TCP, and TLS when configured), hands each socket to
 * a Connection, and shuts down cleanly — stop accepting, let in-flight commands finish, sync and
 * close every journal.
 */
import { readFileSync } from 'node:fs'
import { createServer, type Server, type Socket, type AddressInfo } from 'node:net'
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls'
import { ConfigError } from './errors.js'
import { RECLAIM_IDLE_MS, RECLAIM_MIN_INTERVAL_MS, type ServerConfig, type TlsConfig } from './config.js'
import { Connection } from './connection.js'
import { adoptWithReusedReads } from './reusedReads.js'
import { Dispatcher } from './dispatcher.js'
import { InputBudget } from './protocol/inputBudget.js'
import { QueueCollection } from './engine/queueCollection.js'
import type { HttpGateway } from './http/gateway.js'
import { createJournalFactory, importStarlingSpool } from './journal/index.js'
import type { Logger } from './logger.js'
import { MemoryReclaimer, type ReclaimSettings } from './memoryReclaim.js'
import type { ServerCounters } from './stats.js'
import { prepareSpool } from './spoolDir.js'
import { SpoolLock } from './spoolLock.js'
import { VERSION } from './version.js'

export interface Listening {
  host: string
  port: number
  tlsPort: number | null
  httpPort: number | null
}

export class StarlingServer {
  readonly counters: ServerCounters = {
    startedAt: Date.now(),
    currConnections: 0,
    totalConnections: 0,
    bytesRead: 0,
    bytesWritten: 0,
  }
  readonly collection: QueueCollection
  /** Partially received request frames of all connections (max_input_bytes; set at start). */
  private readonly inputBudget: InputBudget
  private readonly dispatcher: Dispatcher
  private readonly connections = new Set<Connection>()
  private plain: Server | null = null
  private secure: TlsServer | null = null
  private http: HttpGateway | null = null
  private stopping: Promise<void> | null = null
  private lock: SpoolLock | null = null
  /** Gives deleted queues' memory back to the OS (memoryReclaim.ts). */
  private readonly reclaimer: MemoryReclaimer

  constructor(
    private config: ServerConfig,
    private readonly log: Logger,
    private readonly onShutdownRequest: () => void = () => void this.stop(),
  ) {
    const journals = createJournalFactory({ logger: log, maxOpenJournals: config.maxOpenJournals })
    this.collection = new QueueCollection(config, journals, log)
    const reclaimer = (this.reclaimer = new MemoryReclaimer(reclaimSettings(config), () => this.collection.size, log))
    this.collection.onQueueDeleted = () => reclaimer.queueDeleted()
    this.inputBudget = new InputBudget(config.maxInputBytes)
    this.dispatcher = new Dispatcher({
      collection: this.collection,
      stats: {
        version: VERSION,
        server: this.counters,
        collection: this.collection,
        journal: () => journals.stats(),
        input: this.inputBudget,
        reclaimer,
      },
      version: VERSION,
      auth: config.auth,
      enableFlushAll: config.enableFlushAll,
      enableShutdown: config.enableShutdown,
      requestShutdown: () => this.onShutdownRequest(),
      log,
      setVerbosity: (level) => {
        this.log.level = level <= 0 ? this.config.logLevel : level === 1 ? 'debug' : 'trace'
      },
    })
  }

  /** Lock the spool (before reading anything in it), replay every journal, then listen. */
  async start(): Promise<Listening> {
    const spool = prepareSpool(this.config.queuePath, this.log)
    this.lock = SpoolLock.acquire(spool, this.log)
    try {
      return await this.startLocked(spool)
    } catch (err) {
      // Nothing was served: leave the spool to the next server at once.
      await this.collection.close().catch(() => {})
      this.lock.release()
      throw err
    }
  }

  private async startLocked(spool: string): Promise<Listening> {
    this.config = { ...this.config, queuePath: spool }
    this.collection.reconfigure(this.config)
    // HTTP listens first, so that /healthz can say 503 while the spool is replayed.
    const httpPort = await this.startHttp()
    const imported = await importStarlingSpool(spool, this.log)
    if (imported.queues > 0) this.log.info(imported, 'imported Starling journals')
    const replay = await this.collection.load()
    // what the loaded queues hold, once replay's garbage is collected (a restart should add nothing)
    const { rss, heapUsed, arrayBuffers } = process.memoryUsage()
    this.log.info(
      { queues: replay.queues, items: replay.items, durationMs: replay.durationMs, gcMs: replay.gcMs, rssBytes: rss, heapUsedBytes: heapUsed, arrayBuffersBytes: arrayBuffers },
      'replay complete',
    )
    this.http?.markReady()

    // Plain TCP reads into one reused buffer (reusedReads.ts); TLS sockets keep 'data' events.
    this.plain = createServer({ pauseOnConnect: true }, (accepted) => {
      let conn: Connection | null = null
      const socket = adoptWithReusedReads(accepted, (chunk) => conn?.receive(chunk))
      conn = this.accept(socket, true)
    })
    this.plain.maxConnections = this.config.maxConnections
    const port = await listen(this.plain, this.config.port, this.config.host)
    let tlsPort: number | null = null
    const tls = this.config.tls
    if (tls) {
      const options = {
        ...readTlsFiles(tls),
        requestCert: tls.requireClientCert,
        rejectUnauthorized: tls.requireClientCert,
      }
      this.secure = createTlsServer(options, (socket) => this.accept(socket))
      this.secure.maxConnections = this.config.maxConnections
      this.secure.on('tlsClientError', (err) => this.log.debug({ err: err.message }, 'TLS handshake failed'))
      tlsPort = await listen(this.secure, tls.port, tls.host ?? this.config.host)
    }
    return { host: this.config.host, port, tlsPort, httpPort }
  }

  private async startHttp(): Promise<number | null> {
    const http = this.config.http
    if (!http) return null
    // Loaded only when configured: prom-client and the gateway cost ~0.2 s of start-up otherwise.
    const { HttpGateway } = await import('./http/gateway.js')
    this.http = new HttpGateway({
      http,
      defaultHost: this.config.host,
      tls: http.tls && this.config.tls ? readTlsFiles(this.config.tls) : null,
      auth: this.config.auth,
      maxItemSize: this.config.maxItemSize,
      maxKeyLength: this.config.maxKeyLength,
      maxConnections: this.config.maxConnections,
      dispatcher: this.dispatcher,
      collection: this.collection,
      memcachedConnections: () => this.connectionsByProtocol(),
      log: this.log,
    })
    const port = await this.http.listen()
    this.log.info({ httpPort: port, https: http.tls }, 'http listening')
    return port
  }

  /** Open memcached connections by protocol (metrics, at scrape time). */
  private connectionsByProtocol(): Record<string, number> {
    const counts: Record<string, number> = { text: 0, binary: 0, pending: 0 }
    for (const conn of this.connections) counts[conn.protocol]!++
    return counts
  }

  /**
   * Apply a reloaded configuration (SIGHUP): queue settings at once, connection limits to new
   * connections. What else changed needs a restart (reload.ts says which).
   */
  reload(config: ServerConfig): void {
    this.config = { ...config, queuePath: this.config.queuePath }
    this.collection.reconfigure(this.config)
    this.reclaimer.reconfigure(reclaimSettings(this.config))
    for (const listener of [this.plain, this.secure]) if (listener) listener.maxConnections = this.config.maxConnections
  }

  /** The configuration in effect (spool path resolved). */
  get settings(): ServerConfig {
    return this.config
  }

  private accept(socket: Socket, externalReads = false): Connection {
    this.counters.currConnections++
    this.counters.totalConnections++
    const conn = new Connection(
      socket,
      this.dispatcher,
      {
        limits: {
          maxItemSize: this.config.maxItemSize,
          maxKeyLength: this.config.maxKeyLength,
          maxLineLength: this.config.maxLineLength,
        },
        outbox: { maxPendingBytes: this.config.maxOutputBytes, maxPendingSlots: this.config.maxPendingReplies },
        idleTimeoutMs: this.config.timeoutSec * 1000,
        inputBudget: this.inputBudget,
        externalReads,
      },
      (c) => {
        this.counters.currConnections--
        this.connections.delete(c)
      },
    )
    this.connections.add(conn)
    return conn
  }

  /** Clean shutdown. Safe to call more than once. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop()
    return this.stopping
  }

  private async doStop(): Promise<void> {
    this.reclaimer.stop()
    const closed = Promise.all([closeServer(this.plain), closeServer(this.secure), this.http?.close()])
    for (const conn of this.connections) conn.shutdown()
    // Blocked readers are woken empty-handed, pending writes are flushed and synced. A queue that
    // cannot be synced (its files gone, the disk failing) does not stop the rest of the shutdown.
    const synced = this.collection.close().then(
      () => null,
      (err: Error) => err,
    )
    const failure = await synced
    // Give the last replies a moment to leave, then drop whoever is still connected.
    const deadline = Date.now() + 2000
    while (this.connections.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    for (const conn of this.connections) conn.destroy()
    this.http?.destroyConnections()
    await closed
    this.lock?.release()
    if (failure) throw failure
  }
}

function reclaimSettings(config: ServerConfig): ReclaimSettings {
  return { afterDeletes: config.reclaimAfterDeletes, idleMs: RECLAIM_IDLE_MS, minIntervalMs: RECLAIM_MIN_INTERVAL_MS }
}

function readTlsFiles(tls: TlsConfig): { cert: Buffer; key: Buffer; ca: Buffer | undefined } {
  try {
    return { cert: readFileSync(tls.cert), key: readFileSync(tls.key), ca: tls.ca ? readFileSync(tls.ca) : undefined }
  } catch (err) {
    throw new ConfigError(`cannot read TLS file: ${(err as Error).message}`)
  }
}

function listen(server: Server | TlsServer, port: number, host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(new ConfigError(`cannot listen on ${host}:${port}: ${err.code ?? err.message}`))
    }
    server.once('error', onError)
    server.listen(port, host, () => {
      server.off('error', onError)
      resolvePort((server.address() as AddressInfo).port)
    })
  })
}

function closeServer(server: Server | TlsServer | null): Promise<void> {
  return new Promise((r) => (server ? server.close(() => r()) : r()))
}
