/**
 * Mixed at half of peak: the mixed workload's 32 producers and 32 consumers, with the producers
 * paced at a fixed total rate, half of our server's peak in the mixed workload of the same run, so
 * every peer gets the same offered load. The numbers that matter are latencies (set, get, end to
 * end), measured where the machine is not saturated.
 *
 * The rate comes from the earlier `mixed` result of ours-never; failing that (e.g. `--only redis`),
 * from this peer's own; failing that, a short unpaced probe of this peer.
 */
import { fmtCount, rate, WorkloadState, type Workload } from './common.js'
import { finishMixed, MIXED_COLUMNS, PRODUCERS, runMixedPhase } from './mixed.js'

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
  columns: [{ header: 'offered items/s', cell: (r) => fmtCount(r.metrics.offeredPerSec) }, ...MIXED_COLUMNS],
  async run(ctx) {
    const { mixedMs } = ctx.options.sizes
    const running = await ctx.peer.start({})
    try {
      const peak = ctx.earlier('mixed', 'ours-never') ?? ctx.earlier('mixed', ctx.peer.name)
      let peakPerSec = peak?.metrics.consumedPerSec ?? 0
      if (!(peakPerSec > 0)) {
        const probe = await runMixedPhase(ctx, running, new WorkloadState(PRODUCERS), 'bench_mixed_probe', Math.min(mixedMs, PROBE_MS))
        peakPerSec = rate(probe.taken, probe.consumeSeconds)
        ctx.log(`  no mixed result to pace by: probed ${fmtCount(peakPerSec)} items/s`)
      }
      const offered = Math.max(PRODUCERS, Math.round(peakPerSec / 2))
      const state = new WorkloadState(PRODUCERS)
      const phase = await runMixedPhase(ctx, running, state, 'bench_mixed_half', mixedMs, offered)
      const result = finishMixed(ctx, 'mixed-half', state, phase, { offeredPerSec: offered })
      const worst = Math.max(result.latency.set?.p99Ms ?? 0, result.latency.get?.p99Ms ?? 0)
      if (worst > 0) result.metrics.worstP99Ms = worst
      return result
    } finally {
      await running.stop()
    }
  },
}
