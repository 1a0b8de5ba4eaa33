/**
 * Start-up replay and memory of a deep queue (our server only): fill a spool with N items, note the
 * server's RSS holding them, stop it cleanly, then time a fresh start from process spawn to the
 * "listening" log line (replay happens before the port opens), note RSS again, and check that the
 * queue has all N items and that its head comes back intact and in order.
 */
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { decodeItem } from '../harness/item.js'
import { removePeerData } from '../harness/peers.js'
import { memoryMiB } from '../harness/procfs.js'
import { MemcacheTextClient } from '../protocols/memcacheText.js'
import { emptyCorrectness, fmtCount, fmtNumber, pct, runPhase, WorkloadState, type Workload, type WorkloadResult } from './common.js'

const PRODUCERS = 4
const PIPELINE = 32
const VERIFY_HEAD = 2000
const QUEUE = 'bench_replay'

function dirBytes(dir: string): number {
  let total = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    total += entry.isDirectory() ? dirBytes(path) : statSync(path).size
  }
  return total
}

export const REPLAY: Workload = {
  name: 'replay',
  title: 'Start-up replay and RSS of a deep queue',
  keyMetric: 'replayPerSec',
  describe: (o) =>
    `${fmtCount(o.sizes.replayItems)} items of ${o.sizes.replayValueSize} B in one queue (filled by ${PRODUCERS} ` +
    `pipelined connections, sync: never); clean stop; restart timed from spawn to the "listening" log line.`,
  appliesTo: (peer) => peer.name === 'ours-never',
  columns: [
    { header: 'items', cell: (r) => fmtCount(r.metrics.items) },
    { header: 'journal MiB', cell: (r) => fmtNumber(r.metrics.journalMiB, 0) },
    { header: 'fill items/s', cell: (r) => fmtCount(r.metrics.fillPerSec) },
    { header: 'start-up s', cell: (r) => fmtNumber(r.metrics.startSeconds, 2) },
    { header: 'replay items/s', cell: (r) => fmtCount(r.metrics.replayPerSec) },
    { header: 'RSS full queue MiB', cell: (r) => fmtNumber(r.metrics.rssBeforeMiB, 0) },
    { header: 'RSS after replay MiB', cell: (r) => fmtNumber(r.metrics.rssAfterMiB, 0) },
    { header: 'peak RSS MiB', cell: (r) => fmtNumber(r.metrics.peakAfterMiB, 0) },
    { header: 'items after restart', cell: (r) => fmtCount(r.metrics.itemsAfter) },
    {
      header: 'head check lost/dup/corrupt/ooo',
      cell: (r) => `${r.correctness.lost}/${r.correctness.duplicated}/${r.correctness.corrupt}/${r.correctness.outOfOrder}`,
    },
  ],
  async run(ctx) {
    const { replayItems, replayValueSize } = ctx.options.sizes
    const first = await ctx.peer.start({})
    const dataDir = first.dataDir
    const result: WorkloadResult = {
      workload: 'replay',
      peer: ctx.peer.name,
      status: 'ok',
      metrics: { items: replayItems, valueSize: replayValueSize },
      latency: {},
      correctness: emptyCorrectness(),
      generatorCpuPct: 0,
      serverCpuPct: 0,
      errors: [],
    }
    try {
      const state = new WorkloadState(PRODUCERS)
      const fill = await runPhase(ctx, first, state, {
        queue: QUEUE,
        valueSize: replayValueSize,
        producers: PRODUCERS,
        items: replayItems,
        consumers: 0,
        pipeline: PIPELINE,
        timeoutMs: 60_000 + replayItems * 0.5,
      })
      result.generatorCpuPct = pct(fill.generatorCpuSeconds, fill.wallSeconds)
      result.serverCpuPct = pct(fill.serverCpuSeconds, fill.wallSeconds)
      result.metrics.fillPerSec = fill.produceSeconds > 0 ? fill.acked / fill.produceSeconds : 0
      result.metrics.acked = fill.acked
      result.errors.push(...fill.errors)
      const before = memoryMiB(first.pid)
      result.metrics.rssBeforeMiB = before.rss
      result.metrics.peakBeforeMiB = before.peak
      ctx.log(`  filled ${fmtCount(fill.acked)} items in ${fill.produceSeconds.toFixed(1)} s; RSS ${before.rss.toFixed(0)} MiB`)
      if (fill.acked !== replayItems || fill.timedOut) throw new Error(`fill acknowledged ${fill.acked} of ${replayItems}`)
    } finally {
      await first.stop({ keepData: true })
    }
    try {
      result.metrics.journalMiB = dirBytes(dataDir) / 1024 / 1024
      const second = await ctx.peer.start({ dataDir })
      try {
        result.metrics.startSeconds = second.startMs / 1000
        result.metrics.replayPerSec = replayItems / (second.startMs / 1000)
        const after = memoryMiB(second.pid)
        result.metrics.rssAfterMiB = after.rss
        result.metrics.peakAfterMiB = after.peak
        const client = await MemcacheTextClient.connect(second.host, second.port)
        try {
          const stats = await client.stats()
          const items = Number(stats.get(`queue_${QUEUE}_items`) ?? stats.get('curr_items'))
          result.metrics.itemsAfter = items
          if (items !== replayItems) result.correctness.lost = Math.max(0, replayItems - items)
          // The head: each producer's items must come back in order, intact, once.
          const next = new Map<number, number>()
          for (let i = 0; i < Math.min(VERIFY_HEAD, replayItems); i++) {
            const value = await client.get(QUEUE)
            if (value === null) {
              result.correctness.lost++
              break
            }
            const item = decodeItem(value)
            if (item === null) {
              result.correctness.corrupt++
              continue
            }
            const expected = next.get(item.producerId) ?? 0
            if (item.seq < expected) result.correctness.duplicated++
            else if (item.seq > expected) result.correctness.outOfOrder++
            next.set(item.producerId, item.seq + 1)
          }
        } finally {
          client.close()
        }
      } finally {
        await second.stop({ keepData: true })
      }
    } finally {
      removePeerData(dataDir)
    }
    ctx.log(
      `  restart: ${result.metrics.startSeconds!.toFixed(2)} s to listening, RSS ${result.metrics.rssAfterMiB!.toFixed(0)} MiB`,
    )
    return result
  },
}
