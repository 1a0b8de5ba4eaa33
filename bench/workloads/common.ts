/**
 * What every workload shares: its shape (name, which peers it applies to, how its table looks),
 * the result record, and `runPhase`, which spreads producers and consumers over the generator
 * threads, runs them against a started peer, and merges what they report.
 */
import { merge, newHistogram, percentiles, type Percentiles } from '../harness/histogram.js'
import { Ledger, type Correctness } from '../harness/ledger.js'
import type { BenchOptions } from '../harness/options.js'
import type { PeerDef, RunningPeer } from '../harness/peers.js'
import type { WorkerPool } from '../harness/pool.js'
import type { ProtocolName } from '../harness/queueClient.js'
import { cpuSeconds } from '../harness/procfs.js'
import { newShared, type ConsumerSpec, type ProducerSpec, type TaskSpec } from '../harness/task.js'

export interface RunContext {
  options: BenchOptions
  pool: WorkerPool
  peer: PeerDef
  log(line: string): void
  /** Node flags that make our server write a CPU profile where the run can find it. */
  profileArgs(): string[]
  /** A successful result of an earlier workload in this run, for the named peer. */
  earlier(workload: string, peer: string): WorkloadResult | undefined
}

export interface WorkloadResult {
  workload: string
  peer: string
  status: 'ok' | 'failed'
  error?: string
  /** Named numbers (items/s, MB/s, seconds, MiB); the table picks what it shows. */
  metrics: Record<string, number>
  latency: Record<string, Percentiles | null>
  correctness: Correctness
  /** CPU used by the whole load generator (all threads) / wall time, in % of one core. */
  generatorCpuPct: number
  /** CPU used by the server process / wall time, in % of one core. */
  serverCpuPct: number
  errors: string[]
}

export interface Column {
  header: string
  cell(r: WorkloadResult): string
}

export interface Workload {
  name: string
  title: string
  /** The metric the table compares against our server's row (higher is better unless lowerIsBetter). */
  keyMetric: string
  lowerIsBetter?: boolean
  describe(options: BenchOptions): string
  appliesTo(peer: PeerDef): boolean
  columns: Column[]
  run(ctx: RunContext): Promise<WorkloadResult>
}

export function emptyCorrectness(): Correctness {
  return { lost: 0, duplicated: 0, corrupt: 0, outOfOrder: 0, unackedDelivered: 0 }
}

export function correctnessFailed(c: Correctness): boolean {
  return c.lost + c.duplicated + c.corrupt + c.outOfOrder > 0
}

export interface PhaseParams {
  queue: string
  /** Another protocol than the peer's default (memcached binary). */
  protocol?: ProtocolName
  valueSize: number
  producers: number
  /** Total items across producers (Infinity: until durationMs). */
  items: number
  consumers: number
  /** Consumer i follows producer i's keys (plain memcached). */
  keyedFollow?: boolean
  pipeline?: number
  /** Total items/s across producers; 0 = unpaced. */
  ratePerSec?: number
  durationMs?: number
  backlogCap?: number
  takeTimeoutMs?: number
  idleStopMs?: number
  /** Hard limit for the phase; past it the phase fails. */
  timeoutMs: number
}

export interface PhaseOutcome {
  acked: number
  taken: number
  misses: number
  putErrors: number
  takeErrors: number
  produceSeconds: number
  consumeSeconds: number
  wallSeconds: number
  histSet: Float64Array
  histTake: Float64Array
  histEndToEnd: Float64Array
  generatorCpuSeconds: number
  serverCpuSeconds: number
  errors: string[]
  timedOut: boolean
}

/**
 * A workload's shared state across its phases (fill then drain): the counters the threads share,
 * and the ledger of what was acknowledged and delivered.
 */
export class WorkloadState {
  readonly shared: SharedArrayBuffer
  readonly ledger = new Ledger()
  constructor(readonly totalProducers: number) {
    this.shared = newShared(totalProducers)
  }
}

function spread<T>(items: T[], parts: number): T[][] {
  const out: T[][] = Array.from({ length: parts }, () => [])
  items.forEach((item, i) => out[i % parts]!.push(item))
  return out
}

export async function runPhase(
  ctx: RunContext,
  peer: RunningPeer,
  state: WorkloadState,
  params: PhaseParams,
): Promise<PhaseOutcome> {
  const threads = ctx.pool.size
  const producers: ProducerSpec[] = Array.from({ length: params.producers }, (_, i) => ({
    producerId: i,
    count: Number.isFinite(params.items)
      ? Math.floor(params.items / params.producers) + (i < params.items % params.producers ? 1 : 0)
      : Infinity,
  }))
  const consumers: ConsumerSpec[] = Array.from({ length: params.consumers }, (_, i) =>
    params.keyedFollow ? { consumerId: i, follow: i } : { consumerId: i },
  )
  const producerShares = spread(producers, threads)
  const consumerShares = spread(consumers, threads)
  const now = Date.now()
  const specs: TaskSpec[] = []
  for (let t = 0; t < threads; t++) {
    if (producerShares[t]!.length === 0 && consumerShares[t]!.length === 0) continue
    specs.push({
      endpoint: { protocol: params.protocol ?? ctx.peer.protocol, host: peer.host, port: peer.port, keyed: ctx.peer.keyed },
      queue: params.queue,
      valueSize: params.valueSize,
      producers: producerShares[t]!,
      consumers: consumerShares[t]!,
      pipeline: params.pipeline ?? 1,
      ratePerProducer: params.ratePerSec ? params.ratePerSec / Math.max(1, params.producers) : 0,
      produceForMs: params.durationMs ?? 0,
      backlogCap: params.backlogCap ?? 0,
      takeTimeoutMs: params.takeTimeoutMs ?? 0,
      idleStopMs: params.idleStopMs ?? 1000,
      deadlineMs: now + params.timeoutMs,
      totalProducers: state.totalProducers,
      shared: state.shared,
    })
  }
  let cpuBefore = process.cpuUsage()
  let serverBefore = cpuSeconds(peer.pid)
  let wallStart = performance.now()
  const results = await ctx.pool.run(specs, () => {
    cpuBefore = process.cpuUsage()
    serverBefore = cpuSeconds(peer.pid)
    wallStart = performance.now()
  })
  const wallSeconds = (performance.now() - wallStart) / 1000
  const cpu = process.cpuUsage(cpuBefore)
  const outcome: PhaseOutcome = {
    acked: 0,
    taken: 0,
    misses: 0,
    putErrors: 0,
    takeErrors: 0,
    produceSeconds: 0,
    consumeSeconds: 0,
    wallSeconds,
    histSet: newHistogram(),
    histTake: newHistogram(),
    histEndToEnd: newHistogram(),
    generatorCpuSeconds: (cpu.user + cpu.system) / 1e6,
    serverCpuSeconds: cpuSeconds(peer.pid) - serverBefore,
    errors: [],
    timedOut: false,
  }
  let putStart = Infinity
  let putEnd = 0
  let takeStart = Infinity
  let takeEnd = 0
  for (const r of results) {
    outcome.acked += r.acked
    outcome.taken += r.taken
    outcome.misses += r.misses
    outcome.putErrors += r.putErrors
    outcome.takeErrors += r.takeErrors
    outcome.errors.push(...r.errors)
    outcome.timedOut ||= r.timedOut
    merge(outcome.histSet, r.histSet)
    merge(outcome.histTake, r.histTake)
    merge(outcome.histEndToEnd, r.histEndToEnd)
    putStart = Math.min(putStart, r.putStartUs)
    putEnd = Math.max(putEnd, r.putEndUs)
    takeStart = Math.min(takeStart, r.takeStartUs)
    takeEnd = Math.max(takeEnd, r.takeEndUs)
    state.ledger.addAcked(r.ackedSeqs)
    state.ledger.addReceived(r.receivedSeqs)
    state.ledger.corrupt += r.corrupt
    state.ledger.outOfOrder += r.outOfOrder
    state.ledger.duplicated += r.duplicatedLocal
  }
  outcome.produceSeconds = putEnd > putStart ? (putEnd - putStart) / 1e6 : 0
  outcome.consumeSeconds = takeEnd > takeStart ? (takeEnd - takeStart) / 1e6 : 0
  return outcome
}

export function rate(items: number, seconds: number): number {
  return seconds > 0 ? items / seconds : 0
}

export function pct(cpuSeconds: number, wallSeconds: number): number {
  return wallSeconds > 0 ? Math.round((cpuSeconds / wallSeconds) * 1000) / 10 : 0
}

/** The result record with correctness from the ledger and errors from the phases. */
export function finish(
  ctx: RunContext,
  workload: string,
  state: WorkloadState,
  phases: PhaseOutcome[],
  metrics: Record<string, number>,
  latency: Record<string, Float64Array>,
): WorkloadResult {
  const wall = phases.reduce((a, p) => a + p.wallSeconds, 0)
  const errors = phases.flatMap((p) => p.errors).slice(0, 10)
  const timedOut = phases.some((p) => p.timedOut)
  const putErrors = phases.reduce((a, p) => a + p.putErrors, 0)
  const takeErrors = phases.reduce((a, p) => a + p.takeErrors, 0)
  const result: WorkloadResult = {
    workload,
    peer: ctx.peer.name,
    status: timedOut ? 'failed' : 'ok',
    metrics: { ...metrics, putErrors, takeErrors },
    latency: Object.fromEntries(Object.entries(latency).map(([k, h]) => [k, percentiles(h)])),
    correctness: state.ledger.correctness(),
    generatorCpuPct: pct(phases.reduce((a, p) => a + p.generatorCpuSeconds, 0), wall),
    serverCpuPct: pct(phases.reduce((a, p) => a + p.serverCpuSeconds, 0), wall),
    errors,
  }
  if (timedOut) result.error = 'timed out'
  return result
}

export function mergedHist(phases: PhaseOutcome[], pick: (p: PhaseOutcome) => Float64Array): Float64Array {
  const h = newHistogram()
  for (const p of phases) merge(h, pick(p))
  return h
}

/** 12345 → "12.3k"; NaN/undefined → "–". */
export function fmtCount(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '–'
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`
  if (n >= 1e3) return `${(n / 1e3).toFixed(2)}k`
  return n.toFixed(n >= 100 ? 0 : 1)
}

export function fmtNumber(n: number | undefined, digits = 1): string {
  return n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(digits)
}

function ms(n: number): string {
  return n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)
}

/** "p50 / p99 / p999" in ms. */
export function fmtLatency(p: Percentiles | null | undefined): string {
  return p ? `${ms(p.p50Ms)} / ${ms(p.p99Ms)} / ${ms(p.p999Ms)}` : '–'
}

export const COMMON_COLUMNS: Column[] = [
  {
    header: 'lost/dup/corrupt/ooo',
    cell: (r) => `${r.correctness.lost}/${r.correctness.duplicated}/${r.correctness.corrupt}/${r.correctness.outOfOrder}`,
  },
  { header: 'gen CPU %', cell: (r) => fmtNumber(r.generatorCpuPct, 0) },
  { header: 'server CPU %', cell: (r) => fmtNumber(r.serverCpuPct, 0) },
]
