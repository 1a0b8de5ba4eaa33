/**
 * Mixed at half of peak: the mixed workload's 32 producers and 32 consumers, with the producers
 * paced at a fixed total rate, half of our server's peak in the mixed workload of the same run, so
 * every peer gets the same offered load. The numbers that matter are latencies (set, get, end to
 * end), measured where the machine is not saturated.
 *
 * The rate comes from the earlier `mixed` result of ours-never; failing that (e.g. `--only redis`),
 * from this peer's own; failing that, a short unpaced probe of this peer.
 */
import { COMMON_COLUMNS, finish, fmtCount, fmtLatency, rate, runPhase, WorkloadState, type Workload } from './common.js'

const PRODUCERS = 32
const CONSUMERS = 32
const PROBE_MS = 3000

export const MIXED_HALF: Workload = {
  name: 'mixed-half',
  title: 'Mixed at half of peak: 32 paced producers + 32 consumers, 1 KiB',
  keyMetric: 'worstP99Ms',
  lowerIsBetter: true,
  describe: (o) =>
    `The mixed workload for ${o.sizes.mixedMs / 1000} s with the producers paced at half of ours-never's mixed ` +
    `get rate in this run (the same offered load for every peer); consumers poll as in mixed. ` +
    `\`ours ÷ peer\` compares the worse of the set and get p99 (lower is better, so above 1× means ours is lower).`,
  appliesTo: (peer) => peer.durability !== 'always',
  columns: [
    { header: 'offered items/s', cell: (r) => fmtCount(r.metrics.offeredPerSec) },
    { header: 'set items/s', cell: (r) => fmtCount(r.metrics.producedPerSec) },
    { header: 'get items/s', cell: (r) => fmtCount(r.metrics.consumedPerSec) },
    { header: 'set ms p50/p99/p999', cell: (r) => fmtLatency(r.latency.set) },
    { header: 'get ms p50/p99/p999', cell: (r) => fmtLatency(r.latency.get) },
    { header: 'end-to-end ms p50/p99/p999', cell: (r) => fmtLatency(r.latency.endToEnd) },
    ...COMMON_COLUMNS,
  ],
  async run(ctx) {
    const { mixedMs, mixedBacklogCap } = ctx.options.sizes
    const running = await ctx.peer.start({})
    try {
      const peak = ctx.earlier('mixed', 'ours-never') ?? ctx.earlier('mixed', ctx.peer.name)
      let peakPerSec = peak?.metrics.consumedPerSec ?? 0
      if (!(peakPerSec > 0)) {
        const probeState = new WorkloadState(PRODUCERS)
        const probe = await runPhase(ctx, running, probeState, {
          queue: 'bench_mixed_probe',
          valueSize: 1024,
          producers: PRODUCERS,
          items: Infinity,
          consumers: CONSUMERS,
          keyedFollow: ctx.peer.keyed,
          durationMs: Math.min(mixedMs, PROBE_MS),
          backlogCap: mixedBacklogCap,
          idleStopMs: 1000,
          timeoutMs: PROBE_MS + 60_000,
        })
        peakPerSec = rate(probe.taken, probe.consumeSeconds)
        ctx.log(`  no mixed result to pace by: probed ${fmtCount(peakPerSec)} items/s`)
      }
      const offered = Math.max(PRODUCERS, Math.round(peakPerSec / 2))
      const state = new WorkloadState(PRODUCERS)
      const phase = await runPhase(ctx, running, state, {
        queue: 'bench_mixed_half',
        valueSize: 1024,
        producers: PRODUCERS,
        items: Infinity,
        consumers: CONSUMERS,
        keyedFollow: ctx.peer.keyed,
        ratePerSec: offered,
        durationMs: mixedMs,
        backlogCap: mixedBacklogCap,
        idleStopMs: 2000,
        timeoutMs: mixedMs + 120_000,
      })
      const result = finish(
        ctx,
        'mixed-half',
        state,
        [phase],
        {
          offeredPerSec: offered,
          acked: phase.acked,
          taken: phase.taken,
          misses: phase.misses,
          producedPerSec: rate(phase.acked, phase.produceSeconds),
          consumedPerSec: rate(phase.taken, phase.consumeSeconds),
        },
        { set: phase.histSet, get: phase.histTake, endToEnd: phase.histEndToEnd },
      )
      const worst = Math.max(result.latency.set?.p99Ms ?? 0, result.latency.get?.p99Ms ?? 0)
      if (worst > 0) result.metrics.worstP99Ms = worst
      return result
    } finally {
      await running.stop()
    }
  },
}
