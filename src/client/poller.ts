/**
 * A pool of workers taking items from queues in priority order: each worker takes from the first
 * non-empty queue of the list, holds the item as an open read while the handler runs, confirms it
 * when the handler resolves and hands it back when the handler throws.
 *
 * When every queue is empty a worker waits on all of them at once, server-side, for
 * `idleTimeoutMs`, then looks again from the top. stop() — or one of `stopOnSignals`, SIGTERM by
 * default — ends the waits at once and resolves when the items in flight are finished.
 */
import { ConnectionError } from './errors.js'
import { pause } from './pause.js'
import type { OpenAnySource, PollHandler, PollOptions, ReliableItem } from './types.js'

export class Poller<T = unknown> {
  /** Items whose handler resolved and that were confirmed. */
  processed = 0
  /** Items whose handler threw and that were handed back. */
  failed = 0
  /** Items being handled right now. */
  inFlight = 0
  /** Resolves when every worker has ended. */
  readonly done: Promise<void>

  private readonly stopping = new AbortController()
  private readonly concurrency: number
  private readonly idleTimeoutMs: number
  private readonly signals: NodeJS.Signals[]
  private readonly onError: (err: unknown, item?: ReliableItem<unknown>) => void

  constructor(
    private readonly client: OpenAnySource,
    private readonly queues: readonly string[],
    private readonly handler: PollHandler<T>,
    private readonly options: PollOptions = {},
  ) {
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 1))
    this.idleTimeoutMs = Math.max(1, options.idleTimeoutMs ?? 1000)
    this.signals = options.stopOnSignals ?? ['SIGTERM']
    this.onError =
      options.onError ??
      ((err, item) => process.stderr.write(`starling poller: ${item ? `item from ${item.queue} handed back: ` : ''}${err instanceof Error ? err.message : String(err)}\n`))
    if (options.signal?.aborted) this.stopping.abort()
    options.signal?.addEventListener('abort', this.onStopSignal, { once: true })
    for (const sig of this.signals) process.on(sig, this.onStopSignal)
    const workers = Array.from({ length: this.concurrency }, () => this.work())
    this.done = Promise.all(workers).then(() => {
      for (const sig of this.signals) process.off(sig, this.onStopSignal)
      options.signal?.removeEventListener('abort', this.onStopSignal)
    })
  }

  get stopped(): boolean {
    return this.stopping.signal.aborted
  }

  /** Take no more items; resolves once the items in flight are finished. */
  stop(): Promise<void> {
    this.stopping.abort()
    return this.done
  }

  private readonly onStopSignal = (): void => {
    this.stopping.abort()
  }

  private async work(): Promise<void> {
    let errorsInARow = 0
    const signal = this.stopping.signal
    while (!signal.aborted && !this.client.closed) {
      let item: ReliableItem<T> | undefined
      try {
        item = await this.client.openAny<T>(this.queues, { timeoutMs: this.idleTimeoutMs, signal, serializer: this.options.serializer })
        errorsInARow = 0
      } catch (err) {
        if (signal.aborted || this.client.closed) break
        this.onError(err)
        // Reconnection backoff after a connection failure (not a poll: waiting for items is the
        // server's job).
        if (err instanceof ConnectionError) await pause(Math.min(100 * 2 ** errorsInARow++, 5000), signal)
        continue
      }
      if (item === undefined) {
        if (this.options.stopWhenIdle) break
        continue
      }
      await this.handle(item)
    }
  }

  private async handle(item: ReliableItem<T>): Promise<void> {
    this.inFlight++
    try {
      await this.handler(item.value, item)
    } catch (err) {
      this.failed++
      this.onError(err, item as ReliableItem<unknown>)
      if (item.settled === undefined) await item.abort().catch(() => {}) // the server aborts it anyway when the connection is gone
      return
    } finally {
      this.inFlight--
    }
    try {
      if (item.settled === undefined) await item.close()
      this.processed++
    } catch (err) {
      this.onError(err, item as ReliableItem<unknown>)
    }
  }
}
