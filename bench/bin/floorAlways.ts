/**
 * The Node floor under `sync: always`: shared/bench/floor.mjs (text set/get, one FIFO in memory,
 * nothing else) plus the least durability Redis's `appendfsync always` does. Every set appends a
 * record (5-byte header + payload) and every hit appends a 1-byte REMOVE. At the end of the loop
 * turn, one write and one fdatasync cover the turn, and only then do its replies leave.
 *
 * It answers two questions that the figures of issue 13 raised:
 * - How close to Redis `always` can one Node event loop get on the mixed load, when it does no more
 *   than this? (bench/scripts/floor-always.sh runs it against ours-always and Redis.)
 * - Do two threads help: one with the sockets (`--threads`: a worker thread owns the listener and
 *   every connection), the other with the queue and the journal? The threads share two
 *   single-producer rings on SharedArrayBuffers. The queue thread has no sockets, so it blocks in
 *   Atomics.wait; the socket thread waits with Atomics.waitAsync.
 *
 *   node dist/bench/bin/floorAlways.js PORT DIR [--threads] [--never]
 *
 * `--never` drops the journal (the plain floor, or the plain floor split over two threads). A yardstick
 * like the floor, not a design: no limits, no stats, no safety, a bench tool only.
 */
import { openSync, writeSync, fdatasyncSync } from 'node:fs'
import net from 'node:net'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'

/** ES2024's Atomics.waitAsync (in Node 20; the project's lib is ES2023). */
const waitAsync = (Atomics as unknown as {
  waitAsync(array: Int32Array, index: number, value: number): { async: boolean; value: Promise<string> | string }
}).waitAsync

const RING_BYTES = 32 * 1024 * 1024
/** Control words of a ring: bytes in use (Atomics), and a counter bumped to wake its reader. */
const USED = 0
const SEQ = 1
const WRAP = -1
const CLOSED = -2

/**
 * One writer and one reader, each on its own thread. Records are [connection u32][length i32]
 * [bytes, padded to 4]; a length of WRAP sends the reader back to the start, CLOSED says the
 * connection went away.
 */
class Ring {
  private readonly ctl: Int32Array
  private readonly data: Buffer
  private at = 0

  constructor(readonly shared: SharedArrayBuffer) {
    this.ctl = new Int32Array(shared, 0, 2)
    this.data = Buffer.from(shared, 8, RING_BYTES)
  }

  static create(): Ring {
    return new Ring(new SharedArrayBuffer(8 + RING_BYTES))
  }

  put(conn: number, length: number, parts: readonly Buffer[]): void {
    const need = 8 + ((Math.max(length, 0) + 3) & ~3)
    // a record does not wrap: the end of the ring is skipped (marked WRAP if there is room to)
    const skip = RING_BYTES - this.at < need ? RING_BYTES - this.at : 0
    // One request in flight per connection keeps this far below the ring's size.
    if (RING_BYTES - Atomics.load(this.ctl, USED) < need + skip) throw new Error('floorAlways: ring full')
    if (skip > 0) {
      if (skip >= 8) this.data.writeInt32LE(WRAP, this.at + 4)
      this.at = 0
    }
    this.data.writeUInt32LE(conn, this.at)
    this.data.writeInt32LE(length, this.at + 4)
    let p = this.at + 8
    for (const part of parts) p += part.copy(this.data, p)
    this.at = (this.at + need) % RING_BYTES
    Atomics.add(this.ctl, USED, need + skip)
  }

  /** Every record written so far; `bytes` is a view of the ring, valid during the call only. */
  take(each: (conn: number, length: number, bytes: Buffer) => void): void {
    const used = Atomics.load(this.ctl, USED)
    let freed = 0
    while (freed < used) {
      if (RING_BYTES - this.at < 8 || this.data.readInt32LE(this.at + 4) === WRAP) {
        freed += RING_BYTES - this.at
        this.at = 0
        continue
      }
      const conn = this.data.readUInt32LE(this.at)
      const length = this.data.readInt32LE(this.at + 4)
      const bytes = Math.max(length, 0)
      each(conn, length, this.data.subarray(this.at + 8, this.at + 8 + bytes))
      const need = 8 + ((bytes + 3) & ~3)
      this.at = (this.at + need) % RING_BYTES
      freed += need
    }
    if (freed > 0) Atomics.sub(this.ctl, USED, freed)
  }

  wake(): void {
    Atomics.add(this.ctl, SEQ, 1)
    Atomics.notify(this.ctl, SEQ)
  }

  /** Blocks the thread: for the queue thread, which has nothing else to wait for. */
  followBlocking(drain: () => void): never {
    for (;;) {
      const seen = Atomics.load(this.ctl, SEQ)
      drain()
      Atomics.wait(this.ctl, SEQ, seen)
    }
  }

  async follow(drain: () => void): Promise<never> {
    for (;;) {
      const seen = Atomics.load(this.ctl, SEQ)
      drain()
      const waiting = waitAsync(this.ctl, SEQ, seen)
      if (waiting.async) await waiting.value
    }
  }
}

interface Handlers {
  data(bytes: Buffer): void
  close(): void
}

/** floor.mjs's listener: reads land in one reused buffer (onread). */
function listen(port: number, accept: (socket: net.Socket) => Handlers): void {
  const readBuffer = Buffer.allocUnsafe(64 * 1024)
  net
    .createServer({ pauseOnConnect: true }, (accepted) => {
      let handlers: Handlers | undefined
      const handle = (accepted as unknown as { _handle: unknown })._handle
      const socket = new net.Socket({
        handle,
        onread: { buffer: readBuffer, callback: (n: number) => (handlers!.data(readBuffer.subarray(0, n)), true) },
      } as net.SocketConstructorOpts)
      ;(accepted as unknown as { _handle: unknown })._handle = null
      handlers = accept(socket)
      socket.setNoDelay(true)
      socket.on('error', () => socket.destroy())
      socket.on('close', () => handlers!.close())
      socket.resume()
    })
    .listen(port, '127.0.0.1')
}

const STORED = Buffer.from('STORED\r\n')
const END = Buffer.from('END\r\n')
const ERROR = Buffer.from('ERROR\r\n')
const VALUE_END = Buffer.from('\r\nEND\r\n')
const REMOVE = Buffer.from([2])

/** floor.mjs's queues and parser, plus the journal records of the turn. */
class FloorQueue {
  private readonly queues = new Map<string, { items: ({ flags: string; data: Buffer } | undefined)[]; head: number }>()
  private readonly records: Buffer[] = []
  private recordBytes = 0
  private readonly fd: number | null

  constructor(dir: string, journal: boolean) {
    this.fd = journal ? openSync(`${dir}/journal`, 'a', 0o600) : null
  }

  private queue(name: string) {
    let q = this.queues.get(name)
    if (!q) this.queues.set(name, (q = { items: [], head: 0 }))
    return q
  }

  private record(...parts: Buffer[]): void {
    if (this.fd === null) return
    for (const part of parts) {
      this.records.push(part)
      this.recordBytes += part.length
    }
  }

  /** One connection's input; returns what is left of a partial command. */
  serve(pending: Buffer | null, chunk: Buffer, out: Buffer[]): Buffer | null {
    const buf = pending ? Buffer.concat([pending, chunk]) : chunk
    let pos = 0
    while (pos < buf.length) {
      const nl = buf.indexOf(10, pos)
      if (nl < 0) break
      const words = buf.toString('latin1', pos, nl - 1).split(' ')
      if (words[0] === 'set') {
        const n = Number(words[4])
        if (nl + 1 + n + 2 > buf.length) break
        const data = Buffer.from(buf.subarray(nl + 1, nl + 1 + n))
        this.queue(words[1]!).items.push({ flags: words[2]!, data })
        const header = Buffer.allocUnsafe(5)
        header[0] = 1
        header.writeUInt32LE(n, 1)
        this.record(header, data)
        pos = nl + 3 + n
        out.push(STORED)
      } else if (words[0] === 'get') {
        pos = nl + 1
        const q = this.queue(words[1]!)
        const item = q.head < q.items.length ? q.items[q.head] : undefined
        if (item) {
          q.items[q.head++] = undefined
          if (q.head > 1024 && q.head * 2 > q.items.length) {
            q.items = q.items.slice(q.head)
            q.head = 0
          }
          this.record(REMOVE)
          out.push(Buffer.from(`VALUE ${words[1]} ${item.flags} ${item.data.length}\r\n`), item.data, VALUE_END)
        } else out.push(END)
      } else {
        pos = nl + 1
        out.push(ERROR)
      }
    }
    return pos < buf.length ? Buffer.from(buf.subarray(pos)) : null
  }

  /** The turn's records: one write, one fdatasync. */
  commit(): void {
    if (this.fd === null || this.records.length === 0) return
    writeSync(this.fd, Buffer.concat(this.records, this.recordBytes))
    this.records.length = 0
    this.recordBytes = 0
    fdatasyncSync(this.fd)
  }
}

const joined = (out: Buffer[]): Buffer => (out.length === 1 ? out[0]! : Buffer.concat(out))

/** One event loop: the replies of a turn wait for its commit (setImmediate: after the turn's reads). */
function single(port: number, floor: FloorQueue): void {
  const held: [net.Socket, Buffer[]][] = []
  const endTurn = (): void => {
    floor.commit()
    for (const [socket, out] of held) if (!socket.destroyed) socket.write(joined(out))
    held.length = 0
  }
  listen(port, (socket) => {
    let pending: Buffer | null = null
    return {
      data(bytes) {
        const out: Buffer[] = []
        pending = floor.serve(pending, bytes, out)
        if (out.length === 0) return
        if (held.length === 0) setImmediate(endTurn)
        held.push([socket, out])
      },
      close() {},
    }
  })
}

/** The queue thread: takes what the socket thread read, commits, hands back the replies. */
function queueThread(port: number, floor: FloorQueue): void {
  const input = Ring.create()
  const output = Ring.create()
  new Worker(new URL(import.meta.url), { workerData: { port, input: input.shared, output: output.shared } })
  const pending = new Map<number, Buffer | null>()
  const replies = new Map<number, Buffer[]>()
  input.followBlocking(() => {
    input.take((conn, length, bytes) => {
      if (length === CLOSED) return void pending.delete(conn)
      let out = replies.get(conn)
      if (!out) replies.set(conn, (out = []))
      pending.set(conn, floor.serve(pending.get(conn) ?? null, bytes, out))
    })
    if (replies.size === 0) return
    floor.commit()
    for (const [conn, out] of replies) {
      if (out.length > 0) output.put(conn, out.reduce((n, b) => n + b.length, 0), out)
    }
    replies.clear()
    output.wake()
  })
}

/** The socket thread: every connection, its reads into the input ring, replies out of the other. */
function socketThread(data: { port: number; input: SharedArrayBuffer; output: SharedArrayBuffer }): void {
  const input = new Ring(data.input)
  const output = new Ring(data.output)
  const sockets = new Map<number, net.Socket>()
  let next = 1
  let waking = false
  const wake = (): void => {
    waking = false
    input.wake()
  }
  const later = (): void => {
    if (!waking) (waking = true), setImmediate(wake)
  }
  listen(data.port, (socket) => {
    const id = next++
    sockets.set(id, socket)
    return {
      data(bytes) {
        input.put(id, bytes.length, [bytes])
        later()
      },
      close() {
        sockets.delete(id)
        input.put(id, CLOSED, [])
        later()
      },
    }
  })
  void output.follow(() =>
    output.take((conn, _length, bytes) => {
      const socket = sockets.get(conn)
      if (socket && !socket.destroyed) socket.write(Buffer.from(bytes))
    }),
  )
}

if (!isMainThread && parentPort) socketThread(workerData)
else {
  const [portArg, dir = '.', ...flags] = process.argv.slice(2)
  const port = Number(portArg)
  if (!Number.isInteger(port) || port <= 0) {
    process.stderr.write('usage: node dist/bench/bin/floorAlways.js PORT DIR [--threads] [--never]\n')
    process.exit(2)
  }
  const floor = new FloorQueue(dir, !flags.includes('--never'))
  if (flags.includes('--threads')) queueThread(port, floor)
  else single(port, floor)
}
