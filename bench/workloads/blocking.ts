/**
 * Blocking consumers: 256 connections parked in the peer's blocking dequeue (ours `get q/t=1000`,
 * Redis BRPOP, beanstalkd reserve-with-timeout), producers at a fixed total rate; the number that
 * matters is set-to-delivery latency.
 */
import { COMMON_COLUMNS, finish, fmtCount, fmtLatency, rate, runPhase, WorkloadState, type Workload } from './common.js'

const PRODUCERS = 8
const CONSUMERS = 256
const BLOCK_MS = 1000

export const BLOCKING: Workload = {
  name: 'blocking',
  title: 'Blocking consumers: 256 waiting, fixed-rate producers, 1 KiB',
  keyMetric: 'deliveredPerSec',
  describe: (o) =>
    `${CONSUMERS} consumers blocked (${BLOCK_MS} ms per wait), ${PRODUCERS} producers at ` +
    `${fmtCount(o.sizes.blockingRatePerSec)} items/s in total for ${o.sizes.blockingMs / 1000} s; ` +
    `latency = set sent to item delivered.`,
  appliesTo: (peer) => peer.canBlock && peer.durability !== 'always',
  columns: [
    { header: 'delivered', cell: (r) => fmtCount(r.metrics.taken) },
    { header: 'delivered/s', cell: (r) => fmtCount(r.metrics.deliveredPerSec) },
    { header: 'set→delivery ms p50/p99/p999', cell: (r) => fmtLatency(r.latency.endToEnd) },
    { header: 'max ms', cell: (r) => (r.latency.endToEnd ? r.latency.endToEnd.maxMs.toFixed(1) : '–') },
    ...COMMON_COLUMNS,
  ],
  async run(ctx) {
    const { blockingMs, blockingRatePerSec } = ctx.options.sizes
    const running = await ctx.peer.start({})
    try {
      const state = new WorkloadState(PRODUCERS)
      const phase = await runPhase(ctx, running, state, {
        queue: 'bench_blocking',
        valueSize: 1024,
        producers: PRODUCERS,
        items: Infinity,
        consumers: CONSUMERS,
        ratePerSec: blockingRatePerSec,
        durationMs: blockingMs,
        takeTimeoutMs: BLOCK_MS,
        idleStopMs: 1500,
        timeoutMs: blockingMs + 60_000,
      })
      return finish(
        ctx,
        'blocking',
        state,
        [phase],
        {
          acked: phase.acked,
          taken: phase.taken,
          deliveredPerSec: rate(phase.taken, phase.consumeSeconds),
        },
        { set: phase.histSet, endToEnd: phase.histEndToEnd },
      )
    } finally {
      await running.stop()
    }
  },
}
