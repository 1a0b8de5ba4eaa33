/**
 * Fill, then drain: N items set by 32 connections, then taken by 32. Variants: 1 KiB over the
 * text protocol (and over the binary one, for peers that speak it), 64 KiB, 16 B.
 */
import type { Sizes } from '../harness/options.js'
import type { PeerDef } from '../harness/peers.js'
import {
  COMMON_COLUMNS,
  finish,
  fmtCount,
  fmtLatency,
  fmtNumber,
  mergedHist,
  rate,
  runPhase,
  WorkloadState,
  type Workload,
} from './common.js'

const CONNECTIONS = 32

interface Variant {
  name: string
  title: string
  valueSize: number
  items: (sizes: Sizes) => number
  binary?: boolean
}

export function fillDrain(variant: Variant): Workload {
  return {
    name: variant.name,
    title: variant.title,
    keyMetric: 'drainPerSec',
    describe: (o) =>
      `${fmtCount(variant.items(o.sizes))} items of ${variant.valueSize} B set by ${CONNECTIONS} connections` +
      `${variant.binary ? ' over the memcached binary protocol' : ''}, then drained by ${CONNECTIONS}.`,
    // fsync-per-write peers run the durable-fill workload; ours-always also runs the 1 KiB text fill-drain
    appliesTo: (peer: PeerDef) =>
      (peer.durability !== 'always' || (peer.isOurs && variant.name === 'fill-drain')) && (!variant.binary || peer.speaksBinary),
    columns: [
      { header: 'fill items/s', cell: (r) => fmtCount(r.metrics.fillPerSec) },
      { header: 'drain items/s', cell: (r) => fmtCount(r.metrics.drainPerSec) },
      { header: 'fill MB/s', cell: (r) => fmtNumber(r.metrics.fillMBps) },
      { header: 'set ms p50/p99/p999', cell: (r) => fmtLatency(r.latency.set) },
      { header: 'get ms p50/p99/p999', cell: (r) => fmtLatency(r.latency.get) },
      ...COMMON_COLUMNS,
    ],
    async run(ctx) {
      const items = variant.items(ctx.options.sizes)
      const running = await ctx.peer.start({})
      try {
        const state = new WorkloadState(CONNECTIONS)
        const timeoutMs = 60_000 + items * (variant.valueSize > 4096 ? 20 : 2)
        const common = {
          queue: `bench_${variant.name.replace(/-/g, '_')}`,
          valueSize: variant.valueSize,
          ...(variant.binary ? { protocol: 'memcache-binary' as const } : {}),
          timeoutMs,
        }
        const fill = await runPhase(ctx, running, state, { ...common, producers: CONNECTIONS, items, consumers: 0 })
        const drain = await runPhase(ctx, running, state, {
          ...common,
          producers: 0,
          items: 0,
          consumers: CONNECTIONS,
          keyedFollow: ctx.peer.keyed,
          idleStopMs: 500,
        })
        const fillPerSec = rate(fill.acked, fill.produceSeconds)
        const drainPerSec = rate(drain.taken, drain.consumeSeconds)
        return finish(
          ctx,
          variant.name,
          state,
          [fill, drain],
          {
            items,
            acked: fill.acked,
            taken: drain.taken,
            fillSeconds: fill.produceSeconds,
            drainSeconds: drain.consumeSeconds,
            fillPerSec,
            drainPerSec,
            fillMBps: (fillPerSec * variant.valueSize) / 1e6,
            drainMBps: (drainPerSec * variant.valueSize) / 1e6,
          },
          { set: mergedHist([fill], (p) => p.histSet), get: mergedHist([drain], (p) => p.histTake) },
        )
      } finally {
        await running.stop()
      }
    },
  }
}

export const FILL_DRAIN = fillDrain({
  name: 'fill-drain',
  title: 'Fill then drain, 1 KiB',
  valueSize: 1024,
  items: (s) => s.fillDrainItems,
})

export const FILL_DRAIN_BINARY = fillDrain({
  name: 'fill-drain-binary',
  title: 'Fill then drain, 1 KiB, memcached binary protocol',
  valueSize: 1024,
  items: (s) => s.fillDrainItems,
  binary: true,
})

export const LARGE = fillDrain({
  name: 'large',
  title: 'Large items: fill then drain, 64 KiB',
  valueSize: 64 * 1024,
  items: (s) => s.largeItems,
})

export const TINY = fillDrain({
  name: 'tiny',
  title: 'Tiny items: fill then drain, 16 B',
  valueSize: 16,
  items: (s) => s.tinyItems,
})
