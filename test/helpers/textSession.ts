/**
 * Test double of the layer below the text protocol: an in-memory Session (FIFO queues, blocking
 * gets, open/close/abort/peek, a full queue, a failing disk, a slow journal, PLAIN auth), and a REAL
 * loopback TCP server that plugs TextHandler into sockets the way the Connection does.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import type { DeliveredItem, Done, GetDone, Session } from '../../src/server/dispatcher.js'
import { StarlingError } from '../../src/server/errors.js'
import type { ProtocolLimits } from '../../src/server/protocol/handler.js'
import type { QueueReadOptions } from '../../src/server/engine/requests.js'
import { Outbox, type ReplySink } from '../../src/server/protocol/outbox.js'
import { TextHandler } from '../../src/server/protocol/text/handler.js'
import { RawClient } from './textClient.js'

export const DEFAULT_LIMITS: ProtocolLimits = { maxItemSize: 1024 * 1024, maxKeyLength: 250, maxLineLength: 2048 }

/** Queues shared by every session of one store (one "server"). */
export class MemoryStore {
  readonly queues = new Map<string, DeliveredItem[]>()
  readonly waiters = new Map<string, Array<(item: DeliveredItem) => void>>()
  nextCas = 1
  shutdownEnabled = false
  shutdownCalls = 0
  flushAllCalls = 0
  verbosity = -1
  /** Every authenticate() payload seen. */
  readonly authPayloads: Buffer[] = []
}

export interface SessionOptions {
  authRequired?: boolean
  textAllowedUnauthenticated?: boolean
}

export class MemorySession implements Session {
  authenticated = false
  closed = false
  readonly authRequired: boolean
  readonly textAllowedUnauthenticated: boolean
  private readonly openReads = new Map<string, DeliveredItem>()

  constructor(
    private readonly store: MemoryStore,
    options: SessionOptions = {},
  ) {
    this.authRequired = options.authRequired ?? false
    this.textAllowedUnauthenticated = options.textAllowedUnauthenticated ?? false
  }

  set(queue: string, flags: number, exptime: number, data: Buffer, done: Done): void {
    if (queue === 'full') return done(new StarlingError('QUEUE_FULL', 'queue full'))
    if (queue === 'broken') return done(new StarlingError('IO', 'disk on fire'))
    if (queue === 'throws') throw new Error('engine bug')
    const item: DeliveredItem = {
      data: Buffer.from(data), // the handler's view is only valid during the call
      flags,
      cas: this.store.nextCas++,
      ...(exptime > 0 ? { expiresAt: Date.now() + exptime * 1000 } : {}),
    }
    const store = (): void => {
      const waiting = this.store.waiters.get(queue)
      if (waiting && waiting.length > 0) waiting.shift()!(item)
      else this.store.queues.set(queue, [...(this.store.queues.get(queue) ?? []), item])
      done(null)
    }
    // A "slow" queue acknowledges later, like a journal write waiting for its fsync.
    if (queue.startsWith('slow')) setTimeout(store, 60)
    else store()
  }

  get(queue: string, options: QueueReadOptions, done: GetDone): void {
    if (queue === 'broken') return done(new StarlingError('IO', 'disk on fire'), null)
    if (options.abort) {
      const open = this.openReads.get(queue)
      if (open) {
        this.openReads.delete(queue)
        this.store.queues.set(queue, [open, ...(this.store.queues.get(queue) ?? [])])
      }
      return done(null, null)
    }
    if (options.close) this.openReads.delete(queue)
    if (options.open && this.openReads.has(queue)) {
      return done(new StarlingError('OPEN_READ_PENDING', 'open read already pending'), null)
    }
    if (!options.open && !options.peek && options.close) return done(null, null)
    const items = this.store.queues.get(queue)
    const deliver = (item: DeliveredItem): void => {
      if (options.open) this.openReads.set(queue, item)
      done(null, item)
    }
    if (items && items.length > 0) return deliver(options.peek ? items[0]! : items.shift()!)
    if (options.timeoutMs === 0) return done(null, null)
    const list = this.store.waiters.get(queue) ?? []
    this.store.waiters.set(queue, list)
    const waiter = (item: DeliveredItem): void => {
      clearTimeout(timer)
      deliver(item)
    }
    const timer = setTimeout(() => {
      list.splice(list.indexOf(waiter), 1)
      done(null, null)
    }, options.timeoutMs)
    list.push(waiter)
  }

  delete(queue: string, done: (err: StarlingError | null, existed: boolean) => void): void {
    done(null, this.store.queues.delete(queue))
  }

  flush(queue: string, done: Done): void {
    if (queue === 'broken') return done(new StarlingError('IO', 'disk on fire'))
    this.store.queues.set(queue, [])
    done(null)
  }

  flushAll(done: Done): void {
    this.store.flushAllCalls++
    done(null)
  }

  stats(): Array<Array<[string, string]>> {
    return [
      [
        ['pid', '1234'],
        ['version', '9.9.9'],
        ...[...this.store.queues].map(([q, items]): [string, string] => [`queue_${q}_items`, String(items.length)]),
      ],
    ]
  }

  resets = 0
  resetStats(): void {
    this.resets++
  }

  queueStats(queue: string): Array<[string, string]> | null {
    const items = this.store.queues.get(queue)
    return items ? [[`queue_${queue}_items`, String(items.length)]] : null
  }

  version(): string {
    return '9.9.9'
  }

  verbosity(level: number): void {
    this.store.verbosity = level
  }

  shutdown(): boolean {
    this.store.shutdownCalls++
    return this.store.shutdownEnabled
  }

  saslMechanisms(): string[] {
    return ['PLAIN']
  }

  authenticate(mechanism: string, payload: Buffer, done: (ok: boolean, close: boolean) => void): void {
    this.store.authPayloads.push(Buffer.from(payload))
    this.authenticated = mechanism === 'PLAIN' && payload.equals(Buffer.from('\0alice\0secret'))
    done(this.authenticated, false)
  }

  countBytes(): void {}

  close(): void {
    if (this.closed) return
    this.closed = true
    // A dropped connection aborts its open reads.
    for (const [queue, item] of this.openReads) {
      this.store.queues.set(queue, [item, ...(this.store.queues.get(queue) ?? [])])
    }
    this.openReads.clear()
  }
}

export interface TextTestServer {
  port: number
  store: MemoryStore
  sessions: MemorySession[]
  close(): Promise<void>
}

/** A loopback server wiring sockets to TextHandler as the real Connection does. */
export async function startTextServer(
  options: { limits?: Partial<ProtocolLimits>; session?: SessionOptions; store?: MemoryStore } = {},
): Promise<TextTestServer> {
  const store = options.store ?? new MemoryStore()
  const limits = { ...DEFAULT_LIMITS, ...options.limits }
  const sessions: MemorySession[] = []
  const sockets = new Set<Socket>()
  const server: Server = createServer((socket) => {
    sockets.add(socket)
    const session = new MemorySession(store, options.session)
    sessions.push(session)
    const outbox = new Outbox(socket, { maxPendingBytes: 1024 * 1024, maxPendingSlots: 1000 })
    const handler: TextHandler = new TextHandler(session, outbox, limits, {
      end: () => socket.end(),
      resume: () =>
        setImmediate(() => {
          handler.pump()
          if (handler.accepting) socket.resume()
        }),
    })
    socket.on('data', (chunk: Buffer) => {
      handler.feed(chunk)
      if (!handler.accepting) socket.pause()
    })
    socket.on('drain', () => {
      handler.pump()
      if (handler.accepting) socket.resume()
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      sockets.delete(socket)
      outbox.close()
      session.close()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    store,
    sessions,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

/** A ReplySink that collects bytes in memory (for feeding a handler directly, byte by byte). */
export class CollectingSink implements ReplySink {
  readonly chunks: Buffer[] = []
  writableLength = 0
  write(chunk: Buffer): boolean {
    this.chunks.push(Buffer.from(chunk))
    return true
  }
  cork(): void {}
  uncork(): void {}
  text(): string {
    return Buffer.concat(this.chunks).toString('latin1')
  }
}

/**
 * The setup the text-handler and meta tests share: a text test server and a first raw client;
 * `connect()` opens more. Every client and the server are closed at `t`'s teardown.
 */
export async function textServerWithClient(
  t: { teardown(fn: () => unknown): void },
  options: Parameters<typeof startTextServer>[0] = {},
): Promise<{ server: TextTestServer; client: RawClient; connect(): Promise<RawClient> }> {
  const server = await startTextServer(options)
  const clients: RawClient[] = []
  const connect = async (): Promise<RawClient> => {
    const c = await RawClient.connect(server.port)
    clients.push(c)
    return c
  }
  const client = await connect()
  t.teardown(async () => {
    for (const c of clients) c.close()
    await server.close()
  })
  return { server, client, connect }
}
