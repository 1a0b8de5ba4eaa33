/**
 * A load-generator thread. On `prepare` it opens its producer and consumer connections; on `go` it
 * runs them until the task's stop rules say so, verifying every delivered item, and posts a
 * TaskResult. Every loop is bounded by the task deadline.
 */
import { parentPort } from 'node:worker_threads'
import { newHistogram, record } from './histogram.js'
import { decodeItem, elapsedMicros, ItemFactory, nowMicros } from './item.js'
import { Bitmap, toBitmapSet } from './ledger.js'
import { openQueueClient, type QueueClient } from './queueClient.js'
import {
  SHARED_ABORT,
  SHARED_ACKED,
  SHARED_CONSUMED,
  SHARED_PER_PRODUCER,
  SHARED_PRODUCERS_DONE,
  type ConsumerSpec,
  type FromWorker,
  type ProducerSpec,
  type TaskResult,
  type TaskSpec,
  type ToWorker,
} from './task.js'

const MAX_ERRORS_KEPT = 5
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

class TaskRun {
  private readonly counters: Int32Array
  private readonly factory: ItemFactory
  private readonly producerClients: QueueClient[] = []
  private readonly consumerClients: QueueClient[] = []
  private readonly ackedSeqs = new Map<number, Bitmap>()
  private readonly receivedSeqs = new Map<number, Bitmap>()
  private readonly result: TaskResult
  private deadlineTimer: NodeJS.Timeout | null = null
  private startedAtMs = 0

  constructor(private readonly spec: TaskSpec) {
    this.counters = new Int32Array(spec.shared)
    this.factory = new ItemFactory(spec.valueSize)
    this.result = {
      acked: 0,
      putErrors: 0,
      taken: 0,
      misses: 0,
      takeErrors: 0,
      corrupt: 0,
      outOfOrder: 0,
      duplicatedLocal: 0,
      bytesIn: 0,
      bytesOut: 0,
      putStartUs: Infinity,
      putEndUs: 0,
      takeStartUs: Infinity,
      takeEndUs: 0,
      histSet: newHistogram(),
      histTake: newHistogram(),
      histEndToEnd: newHistogram(),
      ackedSeqs: [],
      receivedSeqs: [],
      errors: [],
      timedOut: false,
    }
  }

  async prepare(): Promise<void> {
    const options = { queue: this.spec.queue, blocking: this.spec.takeTimeoutMs > 0 }
    // Connect in small batches: 256 simultaneous connects can overflow a listen backlog.
    const wanted = this.spec.producers.length + this.spec.consumers.length
    const clients: QueueClient[] = []
    try {
      for (let i = 0; i < wanted; i += 16) {
        const batch = Math.min(16, wanted - i)
        const opened = await Promise.allSettled(Array.from({ length: batch }, () => openQueueClient(this.spec.endpoint, options)))
        for (const o of opened) if (o.status === 'fulfilled') clients.push(o.value)
        const failed = opened.find((o) => o.status === 'rejected')
        if (failed) throw (failed as PromiseRejectedResult).reason
      }
    } catch (err) {
      for (const c of clients) await c.close()
      throw err
    }
    this.producerClients.push(...clients.slice(0, this.spec.producers.length))
    this.consumerClients.push(...clients.slice(this.spec.producers.length))
  }

  private error(message: string): void {
    if (this.result.errors.length < MAX_ERRORS_KEPT) this.result.errors.push(message)
  }

  private get aborted(): boolean {
    return Atomics.load(this.counters, SHARED_ABORT) !== 0
  }

  async run(): Promise<TaskResult> {
    this.startedAtMs = Date.now()
    const remaining = this.spec.deadlineMs - Date.now()
    this.deadlineTimer = setTimeout(() => {
      this.result.timedOut = true
      this.error('task deadline passed')
      Atomics.store(this.counters, SHARED_ABORT, 1)
      for (const c of [...this.producerClients, ...this.consumerClients]) void c.close()
    }, Math.max(0, remaining))
    try {
      await Promise.all([
        ...this.spec.producers.map((p, i) => this.produce(p, this.producerClients[i]!)),
        ...this.spec.consumers.map((c, i) => this.consume(c, this.consumerClients[i]!)),
      ])
    } finally {
      clearTimeout(this.deadlineTimer)
      for (const c of [...this.producerClients, ...this.consumerClients]) {
        await c.close()
        this.result.bytesIn += c.bytesIn
        this.result.bytesOut += c.bytesOut
        this.result.takeErrors += c.backgroundErrors
      }
    }
    this.result.ackedSeqs = toBitmapSet(this.ackedSeqs)
    this.result.receivedSeqs = toBitmapSet(this.receivedSeqs)
    return this.result
  }

  private async produce(p: ProducerSpec, client: QueueClient): Promise<void> {
    const { spec, result, counters } = this
    const acked = new Bitmap(Number.isFinite(p.count) ? p.count : 4096)
    this.ackedSeqs.set(p.producerId, acked)
    const produceUntilMs = spec.produceForMs > 0 ? this.startedAtMs + spec.produceForMs : 0
    const intervalMs = spec.ratePerProducer > 0 ? 1000 / spec.ratePerProducer : 0
    const startMs = Date.now()
    let inFlight = 0
    let wake: (() => void) | null = null
    let broken = false
    const onSettled = (): void => {
      inFlight--
      if (wake) {
        const w = wake
        wake = null
        w()
      }
    }
    try {
      for (let seq = 0; seq < p.count; seq++) {
        if (broken || this.aborted) break
        const now = Date.now()
        if (produceUntilMs > 0 && now >= produceUntilMs) break
        if (intervalMs > 0) {
          // Fixed-rate schedule: send when due (late items go out at once: no coordinated omission).
          const due = startMs + seq * intervalMs
          if (due > now) await sleep(due - now)
        }
        if (spec.backlogCap > 0) {
          while (
            !this.aborted &&
            Atomics.load(counters, SHARED_ACKED) - Atomics.load(counters, SHARED_CONSUMED) > spec.backlogCap &&
            (produceUntilMs === 0 || Date.now() < produceUntilMs)
          ) {
            await sleep(1)
          }
        }
        const item = this.factory.make(p.producerId, seq)
        const sentUs = nowMicros()
        if (sentUs < result.putStartUs) result.putStartUs = sentUs
        inFlight++
        const thisSeq = seq
        const settled = client.put(item, p.producerId, seq).then(
          () => {
            const at = nowMicros()
            record(result.histSet, at - sentUs)
            if (at > result.putEndUs) result.putEndUs = at
            acked.set(thisSeq)
            result.acked++
            Atomics.add(counters, SHARED_ACKED, 1)
            Atomics.add(counters, SHARED_PER_PRODUCER + p.producerId, 1)
            onSettled()
          },
          (err: Error) => {
            result.putErrors++
            this.error(`put: ${err.message}`)
            if (err.message.startsWith('connection closed') || 'code' in err) broken = true
            onSettled()
          },
        )
        if (spec.pipeline <= 1) {
          await settled
        } else if (inFlight >= spec.pipeline) {
          await new Promise<void>((resolve) => (wake = resolve))
        }
      }
      // Drain the pipeline (each settles exactly once; the deadline closes the socket if the server hangs).
      while (inFlight > 0) await new Promise<void>((resolve) => (wake = resolve))
    } finally {
      Atomics.add(counters, SHARED_PRODUCERS_DONE, 1)
    }
  }

  private async consume(c: ConsumerSpec, client: QueueClient): Promise<void> {
    const { spec, result, counters } = this
    const lastSeq = new Int32Array(spec.totalProducers).fill(-1)
    const keyed = c.follow !== undefined
    let followSeq = 0
    let idleSinceMs = 0
    // Bounded: every iteration either takes an item, or sleeps/blocks, and the deadline aborts.
    for (;;) {
      if (this.aborted) break
      const producersDone = Atomics.load(counters, SHARED_PRODUCERS_DONE) >= spec.totalProducers
      if (producersDone) {
        if (keyed) {
          if (followSeq >= Atomics.load(counters, SHARED_PER_PRODUCER + c.follow!)) break
        } else if (Atomics.load(counters, SHARED_CONSUMED) >= Atomics.load(counters, SHARED_ACKED)) {
          break
        }
      }
      const t0 = nowMicros()
      if (t0 < result.takeStartUs) result.takeStartUs = t0
      let value: Buffer | null
      try {
        value = await client.take(spec.takeTimeoutMs, keyed ? { producerId: c.follow!, seq: followSeq } : undefined)
      } catch (err) {
        result.takeErrors++
        this.error(`take: ${(err as Error).message}`)
        if (this.aborted || (err as Error).message.startsWith('connection closed')) break
        await sleep(1)
        continue
      }
      const t1 = nowMicros()
      if (value === null) {
        result.misses++
        if (producersDone) {
          if (idleSinceMs === 0) idleSinceMs = Date.now()
          else if (Date.now() - idleSinceMs >= spec.idleStopMs) break
        }
        if (spec.takeTimeoutMs === 0) await sleep(1)
        continue
      }
      idleSinceMs = 0
      record(result.histTake, t1 - t0)
      result.taken++
      result.takeEndUs = t1
      Atomics.add(counters, SHARED_CONSUMED, 1)
      if (keyed) followSeq++
      const item = decodeItem(value)
      if (item === null) {
        result.corrupt++
        continue
      }
      record(result.histEndToEnd, elapsedMicros(item.sentMicros))
      let seen = this.receivedSeqs.get(item.producerId)
      if (!seen) {
        seen = new Bitmap(4096)
        this.receivedSeqs.set(item.producerId, seen)
      }
      if (seen.set(item.seq)) result.duplicatedLocal++
      if (item.producerId < lastSeq.length) {
        if (item.seq < lastSeq[item.producerId]!) result.outOfOrder++
        else lastSeq[item.producerId] = item.seq
      }
    }
  }
}

const port = parentPort
if (!port) throw new Error('bench/worker.js must run in a worker thread')

const runs = new Map<number, TaskRun>()

function send(message: FromWorker): void {
  if (message.type === 'result') {
    const r = message.result
    port!.postMessage(message, [r.histSet.buffer, r.histTake.buffer, r.histEndToEnd.buffer] as ArrayBuffer[])
  } else {
    port!.postMessage(message)
  }
}

port.on('message', (message: ToWorker) => {
  if (message.type === 'exit') {
    port.close()
    return
  }
  if (message.type === 'prepare') {
    const run = new TaskRun(message.spec)
    runs.set(message.id, run)
    run.prepare().then(
      () => send({ type: 'ready', id: message.id }),
      (err: Error) => send({ type: 'failed', id: message.id, error: `connect: ${err.message}` }),
    )
    return
  }
  const run = runs.get(message.id)
  runs.delete(message.id)
  if (!run) {
    send({ type: 'failed', id: message.id, error: 'go without prepare' })
    return
  }
  run.run().then(
    (result) => send({ type: 'result', id: message.id, result }),
    (err: Error) => send({ type: 'failed', id: message.id, error: err.stack ?? err.message }),
  )
})
