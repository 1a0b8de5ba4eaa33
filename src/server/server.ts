/**
 * The server: replays the spool, listens (plain TCP, and TLS when configured), hands each socket to
 * a Connection, and shuts down cleanly — stop accepting, let in-flight commands finish, sync and
 * close every journal.
 */
import { mkdirSync, accessSync, constants as fsConstants, readFileSync } from 'node:fs'
import { createServer, type Server, type Socket, type AddressInfo } from 'node:net'
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls'
import { resolve } from 'node:path'
import { ConfigError } from './errors.js'
import type { ServerConfig } from './config.js'
import { Connection } from './connection.js'
import { Dispatcher } from './dispatcher.js'
import { QueueCollection } from './engine/queueCollection.js'
import { createJournalFactory, importStarlingSpool } from './journal/index.js'
import type { Logger } from './logger.js'
import type { ServerCounters } from './stats.js'
import { VERSION } from './version.js'

export interface Listening {
  host: string
  port: number
  tlsPort: number | null
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
  private readonly dispatcher: Dispatcher
  private readonly connections = new Set<Connection>()
  private plain: Server | null = null
  private secure: TlsServer | null = null
  private stopping: Promise<void> | null = null

  constructor(
    private config: ServerConfig,
    private readonly log: Logger,
    private readonly onShutdownRequest: () => void = () => void this.stop(),
  ) {
    const journals = createJournalFactory({ logger: log, maxOpenJournals: config.maxOpenJournals })
    this.collection = new QueueCollection(config, journals, log)
    this.dispatcher = new Dispatcher({
      collection: this.collection,
      stats: { version: VERSION, server: this.counters, collection: this.collection, journal: () => journals.stats() },
      version: VERSION,
      auth: config.auth,
      enableFlushAll: config.enableFlushAll,
      enableShutdown: config.enableShutdown,
      requestShutdown: () => this.onShutdownRequest(),
      setVerbosity: (level) => {
        this.log.level = level <= 0 ? this.config.logLevel : level === 1 ? 'debug' : 'trace'
      },
    })
  }

  /** Prepare the spool, replay every journal, then listen. */
  async start(): Promise<Listening> {
    const spool = resolve(this.config.queuePath)
    try {
      mkdirSync(spool, { recursive: true })
      accessSync(spool, fsConstants.W_OK | fsConstants.R_OK)
    } catch (err) {
      throw new ConfigError(`cannot use spool directory ${spool}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
    }
    this.config = { ...this.config, queuePath: spool }
    this.collection.reconfigure(this.config)
    const imported = await importStarlingSpool(spool, this.log)
    if (imported.queues > 0) this.log.info(imported, 'imported Starling journals')
    const replay = await this.collection.load()
    this.log.info({ queues: replay.queues, items: replay.items, durationMs: replay.durationMs }, 'replay complete')

    this.plain = createServer((socket) => this.accept(socket))
    this.plain.maxConnections = this.config.maxConnections
    const port = await listen(this.plain, this.config.port, this.config.host)
    let tlsPort: number | null = null
    const tls = this.config.tls
    if (tls) {
      let options
      try {
        options = {
          cert: readFileSync(tls.cert),
          key: readFileSync(tls.key),
          ca: tls.ca ? readFileSync(tls.ca) : undefined,
          requestCert: tls.requireClientCert,
          rejectUnauthorized: tls.requireClientCert,
        }
      } catch (err) {
        throw new ConfigError(`cannot read TLS file: ${(err as Error).message}`)
      }
      this.secure = createTlsServer(options, (socket) => this.accept(socket))
      this.secure.maxConnections = this.config.maxConnections
      this.secure.on('tlsClientError', (err) => this.log.debug({ err: err.message }, 'TLS handshake failed'))
      tlsPort = await listen(this.secure, tls.port, tls.host ?? this.config.host)
    }
    return { host: this.config.host, port, tlsPort }
  }

  /** Apply a reloaded configuration (SIGHUP): per-queue limits and settings. */
  reload(config: ServerConfig): void {
    this.config = { ...config, queuePath: this.config.queuePath }
    this.collection.reconfigure(this.config)
  }

  private accept(socket: Socket): void {
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
      },
      (c) => {
        this.counters.currConnections--
        this.connections.delete(c)
      },
    )
    this.connections.add(conn)
  }

  /** Clean shutdown. Safe to call more than once. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop()
    return this.stopping
  }

  private async doStop(): Promise<void> {
    const closed = Promise.all([closeServer(this.plain), closeServer(this.secure)])
    for (const conn of this.connections) conn.shutdown()
    // Blocked readers are woken empty-handed, pending writes are flushed and synced.
    await this.collection.close()
    // Give the last replies a moment to leave, then drop whoever is still connected.
    const deadline = Date.now() + 2000
    while (this.connections.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    for (const conn of this.connections) conn.destroy()
    await closed
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
