/**
 * Prometheus metrics with prom-client. The memcached hot path does no extra work for them: the
 * engine already counts (items, totals, hits, connections), and every metric here reads those
 * counters in a `collect` callback at scrape time. Only two things are observed as they happen:
 * journal fsync durations (a timing around a call that costs milliseconds anyway) and HTTP
 * requests (not the memcached path).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { QueueCollection } from '../engine/queueCollection.js'
import type { PersistentQueue } from '../engine/persistentQueue.js'
import { setFsyncObserver } from '../journal/index.js'

export interface MetricsSources {
  collection: QueueCollection
  /** Open connections by protocol (text, binary, pending, http), read at scrape time. */
  connections(): Record<string, number>
}

/** fsync takes from well under a millisecond (tmpfs, cache) to seconds (a busy disk). */
const FSYNC_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

export class Metrics {
  readonly registry = new Registry()
  private readonly httpRequests: Counter<'method' | 'route' | 'code'>

  constructor(src: MetricsSources) {
    const registers = [this.registry]
    const queues = (): PersistentQueue[] =>
      src.collection.queueNames.map((n) => src.collection.peekQueue(n)).filter((q): q is PersistentQueue => q !== null)

    // Read at scrape time from the queues' own counters: nothing is counted twice on the hot path.
    const perQueue = (Metric: typeof Gauge | typeof Counter) => (name: string, help: string, value: (q: PersistentQueue) => number): void => {
      new Metric({
        name,
        help,
        labelNames: ['queue'],
        registers,
        collect(this: Gauge | Counter) {
          this.reset()
          for (const q of queues()) {
            if (this instanceof Gauge) this.set({ queue: q.name }, value(q))
            else this.inc({ queue: q.name }, value(q))
          }
        },
      })
    }
    const perQueueGauge = perQueue(Gauge)
    const perQueueCounter = perQueue(Counter)
    perQueueGauge('starling_queue_items', 'Items waiting in the queue (open reads not included).', (q) => q.length)
    perQueueGauge('starling_queue_bytes', 'Payload bytes waiting in the queue.', (q) => q.bytes)
    perQueueGauge('starling_queue_age_seconds', 'How long the last dequeued item had waited (Starling queue_age).', (q) => q.lastAgeMs / 1000)
    perQueueGauge('starling_queue_open_reads', 'Open (unconfirmed) reads on the queue.', (q) => q.openCount)
    perQueueGauge('starling_queue_waiters', 'Readers blocked waiting for an item.', (q) => q.waiterCount)
    perQueueCounter('starling_enqueued_total', 'Items added to the queue since the server started.', (q) => q.totalItems)
    perQueueCounter('starling_dequeued_total', 'Items handed to readers (gets and opens) since the server started.', (q) => q.dequeuedItems)
    perQueueCounter('starling_expired_total', 'Items that expired in the queue since the server started.', (q) => q.expiredItems)

    new Gauge({
      name: 'starling_connections',
      help: 'Open client connections, by protocol (pending: no byte received yet).',
      labelNames: ['protocol'],
      registers,
      collect() {
        this.reset()
        for (const [protocol, n] of Object.entries(src.connections())) this.set({ protocol }, n)
      },
    })
    new Gauge({
      name: 'starling_journal_bytes',
      help: 'Bytes of journal files on disk, all queues.',
      registers,
      collect() {
        let total = 0
        for (const q of queues()) total += q.journalSize
        this.set(total)
      },
    })
    const counters = src.collection.counters
    new Counter({
      name: 'starling_commands_total',
      help: 'Queue commands from every protocol (memcached text, binary, meta and HTTP), by command.',
      labelNames: ['command'],
      registers,
      collect() {
        this.reset()
        this.inc({ command: 'get' }, counters.cmdGet)
        this.inc({ command: 'set' }, counters.cmdSet)
      },
    })
    new Counter({
      name: 'starling_get_results_total',
      help: 'Gets that found an item (hit) or not (miss).',
      labelNames: ['result'],
      registers,
      collect() {
        this.reset()
        this.inc({ result: 'hit' }, counters.getHits)
        this.inc({ result: 'miss' }, counters.getMisses)
      },
    })
    const fsyncs = new Histogram({
      name: 'starling_journal_fsync_seconds',
      help: 'Duration of journal fdatasync calls.',
      buckets: FSYNC_BUCKETS,
      registers,
    })
    setFsyncObserver((seconds) => fsyncs.observe(seconds))
    this.httpRequests = new Counter({
      name: 'starling_http_requests_total',
      help: 'HTTP requests, by method, route and status code.',
      labelNames: ['method', 'route', 'code'],
      registers,
    })
    collectDefaultMetrics({ register: this.registry })
  }

  /** Count one HTTP request (route is the pattern, e.g. `/queues/:q/open`, never the raw path). */
  countRequest(method: string, route: string, code: number): void {
    this.httpRequests.inc({ method, route, code: String(code) })
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() }
  }

  /** Stop observing the journal (server stop). */
  close(): void {
    setFsyncObserver(undefined)
  }
}
