/**
 * One queue interface over every peer's protocol, so a workload is written once:
 *
 * - memcache-text / memcache-binary, queue style (Starling): `set q` enqueues, `get q` dequeues,
 *   `get q/t=<ms>` blocks (Kestrel).
 * - memcache-*, keyed style (plain memcached, the protocol ceiling): each item is its own key
 *   `<q>_<producer>_<seq>`; a consumer follows one producer's keys in order.
 * - resp (Redis lists): RPUSH + LPOP; when consumers block, LPUSH + BRPOP (both FIFO).
 * - beanstalk: put into a tube; reserve-with-timeout, then delete (pipelined with the next reserve).
 */
import { BeanstalkClient } from '../protocols/beanstalk.js'
import { MemcacheBinaryClient } from '../protocols/memcacheBinary.js'
import { MemcacheTextClient } from '../protocols/memcacheText.js'
import { RespClient } from '../protocols/resp.js'

export type ProtocolName = 'memcache-text' | 'memcache-binary' | 'resp' | 'beanstalk'

export interface Endpoint {
  protocol: ProtocolName
  host: string
  port: number
  /** Plain memcached: one key per item instead of one queue. */
  keyed: boolean
}

export interface QueueClientOptions {
  queue: string
  /** Consumers will block (BRPOP etc.); chooses Redis's list direction. */
  blocking: boolean
}

export interface QueueClient {
  put(value: Buffer, producerId: number, seq: number): Promise<void>
  /** An item, or null when there is none (after waiting up to `timeoutMs` if > 0). Keyed style needs `follow`. */
  take(timeoutMs: number, follow?: { producerId: number; seq: number }): Promise<Buffer | null>
  /** Waits for anything still in flight (bounded), then closes. */
  close(): Promise<void>
  readonly bytesIn: number
  readonly bytesOut: number
  /** Errors from fire-and-forget follow-ups (beanstalk deletes). */
  readonly backgroundErrors: number
}

export async function openQueueClient(endpoint: Endpoint, options: QueueClientOptions): Promise<QueueClient> {
  const { host, port } = endpoint
  switch (endpoint.protocol) {
    case 'memcache-text':
      return new MemcacheQueue(await MemcacheTextClient.connect(host, port), endpoint.keyed, options.queue, true)
    case 'memcache-binary':
      return new MemcacheQueue(await MemcacheBinaryClient.connect(host, port), endpoint.keyed, options.queue, false)
    case 'resp':
      return new RedisQueue(await RespClient.connect(host, port), options)
    case 'beanstalk': {
      const client = await BeanstalkClient.connect(host, port)
      await client.use(options.queue)
      await client.watch(options.queue)
      await client.ignore('default')
      return new BeanstalkQueue(client)
    }
  }
}

interface MemcacheLike {
  set(key: string, value: Buffer): Promise<void>
  get(key: string): Promise<Buffer | null>
  close(): void
  bytesIn: number
  bytesOut: number
}

class MemcacheQueue implements QueueClient {
  readonly backgroundErrors = 0
  constructor(
    private readonly client: MemcacheLike,
    private readonly keyed: boolean,
    private readonly queue: string,
    private readonly canBlock: boolean,
  ) {}

  get bytesIn(): number {
    return this.client.bytesIn
  }
  get bytesOut(): number {
    return this.client.bytesOut
  }

  put(value: Buffer, producerId: number, seq: number): Promise<void> {
    return this.client.set(this.keyed ? `${this.queue}_${producerId}_${seq}` : this.queue, value)
  }

  take(timeoutMs: number, follow?: { producerId: number; seq: number }): Promise<Buffer | null> {
    if (this.keyed) {
      if (!follow) throw new Error('keyed take needs the producer and sequence to follow')
      return this.client.get(`${this.queue}_${follow.producerId}_${follow.seq}`)
    }
    if (timeoutMs > 0 && this.canBlock) return this.client.get(`${this.queue}/t=${timeoutMs}`)
    return this.client.get(this.queue)
  }

  async close(): Promise<void> {
    this.client.close()
  }
}

class RedisQueue implements QueueClient {
  readonly backgroundErrors = 0
  private readonly pushCommand: string
  private readonly popCommand: string
  private readonly blockingPopCommand = 'BRPOP'

  constructor(
    private readonly client: RespClient,
    private readonly options: QueueClientOptions,
  ) {
    // FIFO either way: RPUSH/LPOP, or LPUSH/BRPOP (BRPOP takes from the right).
    this.pushCommand = options.blocking ? 'LPUSH' : 'RPUSH'
    this.popCommand = options.blocking ? 'RPOP' : 'LPOP'
  }

  get bytesIn(): number {
    return this.client.bytesIn
  }
  get bytesOut(): number {
    return this.client.bytesOut
  }

  async put(value: Buffer): Promise<void> {
    await this.client.command([this.pushCommand, this.options.queue, value])
  }

  async take(timeoutMs: number): Promise<Buffer | null> {
    if (timeoutMs > 0) {
      const reply = await this.client.command([this.blockingPopCommand, this.options.queue, String(timeoutMs / 1000)])
      if (reply === null) return null
      if (Array.isArray(reply) && Buffer.isBuffer(reply[1])) return reply[1]
      throw new Error(`unexpected BRPOP reply ${String(reply)}`)
    }
    const reply = await this.client.command([this.popCommand, this.options.queue])
    if (reply === null) return null
    if (Buffer.isBuffer(reply)) return reply
    throw new Error(`unexpected ${this.popCommand} reply ${String(reply)}`)
  }

  async close(): Promise<void> {
    this.client.close()
  }
}

class BeanstalkQueue implements QueueClient {
  backgroundErrors = 0
  private deletesInFlight = 0

  constructor(private readonly client: BeanstalkClient) {}

  get bytesIn(): number {
    return this.client.bytesIn
  }
  get bytesOut(): number {
    return this.client.bytesOut
  }

  async put(value: Buffer): Promise<void> {
    await this.client.put(value)
  }

  async take(timeoutMs: number): Promise<Buffer | null> {
    const job = await this.client.reserve(Math.ceil(timeoutMs / 1000))
    if (job === null) return null
    // Pipelined: the delete goes out now, its reply is checked when it arrives, ahead of the next reserve's.
    this.deletesInFlight++
    this.client.delete(job.id).then(
      () => this.deletesInFlight--,
      () => {
        this.deletesInFlight--
        this.backgroundErrors++
      },
    )
    return job.body
  }

  async close(): Promise<void> {
    const deadline = Date.now() + 5000
    while (this.deletesInFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
    this.client.close()
  }
}
