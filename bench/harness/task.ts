/**
 * What the orchestrator asks a load-generator thread to do, and what the thread reports back.
 * Plain data only: it crosses `postMessage`.
 */
import type { Endpoint } from './queueClient.js'
import type { BitmapSet } from './ledger.js'

export interface ProducerSpec {
  /** 0 .. totalProducers-1, unique within a workload. */
  producerId: number
  /** Most items to send (Infinity: until `produceUntilMs`). */
  count: number
}

export interface ConsumerSpec {
  consumerId: number
  /** Keyed style (plain memcached): the producer whose keys this consumer reads in order. */
  follow?: number
}

export interface TaskSpec {
  endpoint: Endpoint
  queue: string
  valueSize: number
  producers: ProducerSpec[]
  consumers: ConsumerSpec[]
  /** Sets in flight per producer connection (1 = request/response). */
  pipeline: number
  /** Items/s per producer; 0 = as fast as the server acknowledges. */
  ratePerProducer: number
  /** Producers stop this long after the go signal; 0 = when their count is sent. */
  produceForMs: number
  /** Producers pause while acknowledged minus consumed exceeds this; 0 = no cap. */
  backlogCap: number
  /** Consumers block this long per take (Kestrel /t=, BRPOP, reserve-with-timeout); 0 = poll. */
  takeTimeoutMs: number
  /** Once producers are done, a consumer that finds nothing for this long stops. */
  idleStopMs: number
  /** Date.now() after which everything is abandoned and the task fails. */
  deadlineMs: number
  totalProducers: number
  /** Int32 counters shared by all threads of a workload; see SHARED_*. */
  shared: SharedArrayBuffer
}

export const SHARED_PRODUCERS_DONE = 0
export const SHARED_ACKED = 1
export const SHARED_CONSUMED = 2
export const SHARED_ABORT = 3
/** Per-producer acknowledged counts start here (keyed consumers need them). */
export const SHARED_PER_PRODUCER = 8

export function newShared(totalProducers: number): SharedArrayBuffer {
  return new SharedArrayBuffer(4 * (SHARED_PER_PRODUCER + Math.max(1, totalProducers)))
}

export interface TaskResult {
  acked: number
  putErrors: number
  taken: number
  misses: number
  takeErrors: number
  corrupt: number
  outOfOrder: number
  /** Duplicates seen within this thread (cross-thread ones show up when bitmaps are merged). */
  duplicatedLocal: number
  bytesIn: number
  bytesOut: number
  /** Monotonic µs of the first send / last acknowledgement, and of the first take / last delivery. */
  putStartUs: number
  putEndUs: number
  takeStartUs: number
  takeEndUs: number
  histSet: Float64Array
  histTake: Float64Array
  histEndToEnd: Float64Array
  ackedSeqs: BitmapSet
  receivedSeqs: BitmapSet
  errors: string[]
  timedOut: boolean
}

export type ToWorker = { type: 'prepare'; id: number; spec: TaskSpec } | { type: 'go'; id: number } | { type: 'exit' }

export type FromWorker =
  | { type: 'ready'; id: number }
  | { type: 'result'; id: number; result: TaskResult }
  | { type: 'failed'; id: number; error: string }
