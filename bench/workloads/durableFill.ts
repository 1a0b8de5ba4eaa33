/**
 * Durable fill: 64 producers against peers that fsync every write before acknowledging it (ours
 * `sync: always`, Redis `appendfsync always`, beanstalkd `-f 0`), for a fixed time; then drained
 * and checked.
 */
import { COMMON_COLUMNS, finish, fmtCount, fmtLatency, rate, runPhase, WorkloadState, type Workload } from './common.js'

const PRODUCERS = 64
const CONSUMERS = 32

export const DURABLE_FILL: Workload = {
  name: 'durable-fill',
  title: 'Durable fill: 64 producers, fsync on every write, 1 KiB',
  keyMetric: 'fillPerSec',
  describe: (o) =>
    `${PRODUCERS} producers for ${o.sizes.durableMs / 1000} s against fsync-per-write configurations, then drained by ${CONSUMERS}; ` +
    `ours-never (no fsync) runs too, as the reference for group commit (sync: always should reach at least half of it).`,
  // ours-never is the yardstick for group commit: `sync: always` vs `never` at 64 producers.
  appliesTo: (peer) => peer.durability === 'always' || peer.name === 'ours-never',
  columns: [
    { header: 'fill items/s', cell: (r) => fmtCount(r.metrics.fillPerSec) },
    { header: 'set ms p50/p99/p999', cell: (r) => fmtLatency(r.latency.set) },
    { header: 'drain items/s', cell: (r) => fmtCount(r.metrics.drainPerSec) },
    ...COMMON_COLUMNS,
  ],
  async run(ctx) {
    const { durableMs } = ctx.options.sizes
    const running = await ctx.peer.start({})
    try {
      const state = new WorkloadState(PRODUCERS)
      const common = { queue: 'bench_durable', valueSize: 1024, timeoutMs: durableMs + 180_000 }
      const fill = await runPhase(ctx, running, state, {
        ...common,
        producers: PRODUCERS,
        items: Infinity,
        consumers: 0,
        durationMs: durableMs,
      })
      const drain = await runPhase(ctx, running, state, {
        ...common,
        producers: 0,
        items: 0,
        consumers: CONSUMERS,
        idleStopMs: 500,
      })
      return finish(
        ctx,
        'durable-fill',
        state,
        [fill, drain],
        {
          acked: fill.acked,
          taken: drain.taken,
          fillPerSec: rate(fill.acked, fill.produceSeconds),
          drainPerSec: rate(drain.taken, drain.consumeSeconds),
        },
        { set: fill.histSet, get: drain.histTake },
      )
    } finally {
      await running.stop()
    }
  },
}
