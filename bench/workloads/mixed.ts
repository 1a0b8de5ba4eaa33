/**
 * Mixed: 32 producers and 32 consumers at once for a fixed time (producers pause while the backlog
 * exceeds a cap, so the run measures a steady state, not how fast a queue can grow), then the
 * consumers drain what is left and every item is accounted for.
 */
import { COMMON_COLUMNS, finish, fmtCount, fmtLatency, rate, runPhase, WorkloadState, type Workload } from './common.js'

const PRODUCERS = 32
const CONSUMERS = 32

export const MIXED: Workload = {
  name: 'mixed',
  title: 'Mixed: 32 producers + 32 consumers, 1 KiB',
  keyMetric: 'consumedPerSec',
  describe: (o) =>
    `${PRODUCERS} producers and ${CONSUMERS} consumers (non-blocking get, 1 ms back-off when empty) for ` +
    `${o.sizes.mixedMs / 1000} s, backlog capped at ${fmtCount(o.sizes.mixedBacklogCap)} items; ` +
    `end-to-end = set sent to item delivered.`,
  appliesTo: (peer) => peer.durability !== 'always',
  columns: [
    { header: 'set items/s', cell: (r) => fmtCount(r.metrics.producedPerSec) },
    { header: 'get items/s', cell: (r) => fmtCount(r.metrics.consumedPerSec) },
    { header: 'set ms p50/p99/p999', cell: (r) => fmtLatency(r.latency.set) },
    { header: 'get ms p50/p99/p999', cell: (r) => fmtLatency(r.latency.get) },
    { header: 'end-to-end ms p50/p99/p999', cell: (r) => fmtLatency(r.latency.endToEnd) },
    ...COMMON_COLUMNS,
  ],
  async run(ctx) {
    const { mixedMs, mixedBacklogCap } = ctx.options.sizes
    const running = await ctx.peer.start(ctx.options.cpuProf && ctx.peer.isOurs ? { nodeArgs: ctx.profileArgs() } : {})
    try {
      const state = new WorkloadState(PRODUCERS)
      const phase = await runPhase(ctx, running, state, {
        queue: 'bench_mixed',
        valueSize: 1024,
        producers: PRODUCERS,
        items: Infinity,
        consumers: CONSUMERS,
        keyedFollow: ctx.peer.keyed,
        durationMs: mixedMs,
        backlogCap: mixedBacklogCap,
        idleStopMs: 2000,
        timeoutMs: mixedMs + 120_000,
      })
      return finish(
        ctx,
        'mixed',
        state,
        [phase],
        {
          acked: phase.acked,
          taken: phase.taken,
          misses: phase.misses,
          producedPerSec: rate(phase.acked, phase.produceSeconds),
          consumedPerSec: rate(phase.taken, phase.consumeSeconds),
        },
        { set: phase.histSet, get: phase.histTake, endToEnd: phase.histEndToEnd },
      )
    } finally {
      await running.stop()
    }
  },
}
