/**
 * Mixed: 32 producers and 32 consumers at once for a fixed time (producers pause while the backlog
 * exceeds a cap, so the run measures a steady state, not how fast a queue can grow), then the
 * consumers drain what is left and every item is accounted for.
 */
import type { RunningPeer } from '../harness/peers.js'
import {
  COMMON_COLUMNS,
  finish,
  fmtCount,
  fmtLatency,
  rate,
  runPhase,
  WorkloadState,
  type Column,
  type PhaseOutcome,
  type RunContext,
  type Workload,
} from './common.js'

export const PRODUCERS = 32
const CONSUMERS = 32

/** The columns of the mixed workloads. */
export const MIXED_COLUMNS: Column[] = [
  { header: 'set items/s', cell: (r) => fmtCount(r.metrics.producedPerSec) },
  { header: 'get items/s', cell: (r) => fmtCount(r.metrics.consumedPerSec) },
  { header: 'set ms p50/p99/p999', cell: (r) => fmtLatency(r.latency.set) },
  { header: 'get ms p50/p99/p999', cell: (r) => fmtLatency(r.latency.get) },
  { header: 'end-to-end ms p50/p99/p999', cell: (r) => fmtLatency(r.latency.endToEnd) },
  ...COMMON_COLUMNS,
]

export const MIXED: Workload = {
  name: 'mixed',
  title: 'Mixed: 32 producers + 32 consumers, 1 KiB',
  keyMetric: 'consumedPerSec',
  describe: (o) =>
    `${PRODUCERS} producers and ${CONSUMERS} consumers (non-blocking get, 1 ms back-off when empty) for ` +
    `${o.sizes.mixedMs / 1000} s, backlog capped at ${fmtCount(o.sizes.mixedBacklogCap)} items; ` +
    `end-to-end = set sent to item delivered.`,
  appliesTo: (peer) => peer.durability !== 'always',
  columns: MIXED_COLUMNS,
  async run(ctx) {
    const running = await ctx.peer.start(ctx.options.cpuProf && ctx.peer.isOurs ? { nodeArgs: ctx.profileArgs() } : {})
    try {
      const state = new WorkloadState(PRODUCERS)
      const phase = await runMixedPhase(ctx, running, state, 'bench_mixed', ctx.options.sizes.mixedMs)
      return finishMixed(ctx, 'mixed', state, phase, {})
    } finally {
      await running.stop()
    }
  },
}

/** 32 producers (paced at `ratePerSec` in total if given) and 32 polling consumers for `durationMs`. */
export function runMixedPhase(
  ctx: RunContext,
  running: RunningPeer,
  state: WorkloadState,
  queue: string,
  durationMs: number,
  ratePerSec = 0,
): Promise<PhaseOutcome> {
  return runPhase(ctx, running, state, {
    queue,
    valueSize: 1024,
    producers: PRODUCERS,
    items: Infinity,
    consumers: CONSUMERS,
    keyedFollow: ctx.peer.keyed,
    ratePerSec,
    durationMs,
    backlogCap: ctx.options.sizes.mixedBacklogCap,
    idleStopMs: 2000,
    timeoutMs: durationMs + 120_000,
  })
}

export function finishMixed(ctx: RunContext, workload: string, state: WorkloadState, phase: PhaseOutcome, extra: Record<string, number>) {
  return finish(
    ctx,
    workload,
    state,
    [phase],
    {
      ...extra,
      acked: phase.acked,
      taken: phase.taken,
      misses: phase.misses,
      producedPerSec: rate(phase.acked, phase.produceSeconds),
      consumedPerSec: rate(phase.taken, phase.consumeSeconds),
    },
    { set: phase.histSet, get: phase.histTake, endToEnd: phase.histEndToEnd },
  )
}
