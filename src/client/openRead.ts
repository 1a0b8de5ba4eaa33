/**
 * Open reads (`/open`, then `/close` or `/abort`): taking an item tentatively, so that an item
 * the server hands over just as the caller gave up is put back, not lost.
 *
 * Taking races several servers and queues at once (waitRound): the first item to arrive wins,
 * and every other one — now or after the caller has moved on — is aborted back to its queue.
 * Waiting is done by the server (`/t=<ms>`), in slices of `waitSliceMs`, never by sleeping here.
 */
import type { ValueReply, Connection } from './connection.js'
import { abortReason, StarlingClientError } from './errors.js'
import { getKey, encodeLine } from './protocol.js'
import type { Cluster } from './cluster.js'
import type { ServerEndpoint } from './servers.js'
import type { ReadOptions, ReliableItem } from './types.js'
import { pause } from './pause.js'

/** An open read in progress: which connection holds it. */
export interface Opened {
  endpoint: ServerEndpoint
  conn: Connection
  queue: string
  value: ValueReply
}

export class OpenReads {
  constructor(
    private readonly cluster: Cluster,
    private readonly options: { timeoutMs: number; waitSliceMs: number },
    private readonly decode: (value: ValueReply, options: ReadOptions) => unknown,
  ) {}

  /**
   * Open reads of `queues` in priority order: first a pass that does not wait (each queue, every
   * server), then server-side waits on all of them at once, in slices, until one delivers.
   */
  async first(queues: readonly string[], timeoutMs: number, signal: AbortSignal | undefined): Promise<Opened | undefined> {
    const order = this.cluster.readOrder()
    const sweep = this.cluster.sweep()
    for (const queue of queues) {
      const command = encodeLine(`get ${getKey(queue, { open: true })}`)
      const opened = await sweep.first(order, async (endpoint): Promise<Opened | undefined> => {
        const conn = endpoint.lease()
        let values: ValueReply[]
        try {
          values = await conn.request(command, 'values', this.options.timeoutMs)
        } catch (err) {
          endpoint.discard(conn)
          throw err
        }
        const value = values[0]
        if (value !== undefined) return { endpoint, conn, queue, value }
        endpoint.release(conn)
        return undefined
      })
      if (opened !== undefined) return opened
    }
    sweep.requireAnswer()
    if (timeoutMs <= 0) return undefined
    return this.wait(queues, timeoutMs, signal)
  }

  /** Server-side waits (`/open/t=`) on every queue × server at once, slice after slice. */
  async wait(queues: readonly string[], timeoutMs: number, signal: AbortSignal | undefined): Promise<Opened | undefined> {
    const closing = this.cluster.closedSignal
    const stop = signal === undefined ? closing : AbortSignal.any([signal, closing])
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (stop.aborted) throw this.cluster.translate(abortReason(stop))
      const left = deadline - Date.now()
      if (left <= 0) return undefined
      const slice = Math.max(1, Math.min(this.options.waitSliceMs, left))
      const roundStarted = Date.now()
      const opened = await this.waitRound(queues, slice, stop)
      if (opened !== undefined) return opened
      // A server that answers empty long before the wait it was asked for (one that ignores /t=,
      // or a wake-up another reader won) must not be hammered: at most one round per 50 ms.
      const early = Math.min(50, slice) - (Date.now() - roundStarted)
      if (early > 0) await pause(early, stop)
    }
  }

  /**
   * One round of waits. The first item to arrive wins — or, when several arrive together, the one
   * from the highest-priority queue; every other item that arrives, now or after the caller has
   * moved on, is aborted back to its queue. Abort ends the round at once.
   */
  private waitRound(queues: readonly string[], sliceMs: number, stop: AbortSignal): Promise<Opened | undefined> {
    return new Promise<Opened | undefined>((resolve, reject) => {
      const sweep = this.cluster.sweep()
      let settled = false
      let outstanding = 0
      let arrived: Array<Opened & { rank: number }> = []
      const finish = (result: Opened | undefined, err?: unknown): void => {
        if (settled) return
        settled = true
        stop.removeEventListener('abort', onAbort)
        if (err !== undefined) reject(err)
        else resolve(result)
      }
      const giveBack = (o: Opened): void => {
        o.conn.request(encodeLine(`get ${getKey(o.queue, { abort: true })}`), 'values', this.options.timeoutMs).then(
          () => o.endpoint.release(o.conn),
          () => o.endpoint.discard(o.conn),
        )
      }
      const decide = (): void => {
        const candidates = arrived
        arrived = []
        if (candidates.length === 0) return
        candidates.sort((a, b) => a.rank - b.rank)
        const [best, ...rest] = candidates
        for (const o of rest) giveBack(o)
        if (settled) giveBack(best!)
        else finish(best)
      }
      const onAbort = (): void => finish(undefined, this.cluster.translate(abortReason(stop)))
      stop.addEventListener('abort', onAbort, { once: true })

      queues.forEach((queue, rank) => {
        const command = encodeLine(`get ${getKey(queue, { open: true, waitMs: sliceMs })}`)
        for (const endpoint of this.cluster.endpoints) {
          if (!sweep.usable(endpoint)) continue
          const conn = endpoint.lease()
          outstanding++
          conn.request(command, 'values', sliceMs + this.options.timeoutMs).then(
            (values) => {
              outstanding--
              sweep.answered = true
              const value = values[0]
              if (value === undefined) {
                endpoint.release(conn)
                if (outstanding === 0 && arrived.length === 0) finish(undefined)
                return
              }
              const o = { endpoint, conn, queue, value, rank }
              if (settled) return giveBack(o)
              // Let replies already read in this turn of the event loop compete on priority.
              if (arrived.push(o) === 1) setImmediate(decide)
            },
            (err: unknown) => {
              outstanding--
              endpoint.discard(conn)
              if (outstanding === 0 && arrived.length === 0) {
                if (sweep.answered) finish(undefined)
                else finish(undefined, this.cluster.translate(err))
              }
            },
          )
        }
      })
      if (outstanding === 0) finish(undefined, sweep.noAnswer())
    })
  }

  /** Send `/close` or `/abort` for an open read on its connection, then give the connection back. */
  async settle(opened: Opened, how: 'close' | 'abort'): Promise<void> {
    const command = encodeLine(`get ${getKey(opened.queue, how === 'close' ? { close: true } : { abort: true })}`)
    try {
      await opened.conn.request(command, 'values', this.options.timeoutMs)
    } catch (err) {
      opened.endpoint.discard(opened.conn)
      throw this.cluster.translate(err)
    }
    opened.endpoint.release(opened.conn)
  }

  /** The caller's handle on an open read: decoded value, and close()/abort() that settle once. */
  async reliableItem<T>(opened: Opened, options: ReadOptions): Promise<ReliableItem<T>> {
    let value: T
    try {
      value = this.decode(opened.value, options) as T
    } catch (err) {
      // Undecodable: handed back it would come round forever, so it is taken, as fetch() would.
      await this.settle(opened, 'close').catch(() => {})
      throw err
    }
    let state: 'close' | 'abort' | undefined
    let settling: Promise<void> | undefined
    const settleOnce = (how: 'close' | 'abort'): Promise<void> => {
      if (state !== undefined) {
        if (state === how) return settling!
        return Promise.reject(new StarlingClientError('ALREADY_SETTLED', `item already ${state === 'close' ? 'closed' : 'aborted'}`))
      }
      state = how
      settling = this.settle(opened, how)
      return settling
    }
    return {
      value,
      queue: opened.queue,
      server: opened.endpoint.label,
      flags: opened.value.flags,
      get settled() {
        return state
      },
      close: () => settleOnce('close'),
      abort: () => settleOnce('abort'),
    }
  }
}
