/**
 * Process-wide journal counters for the stats: every queue's journal adds to the same ones, so
 * they live here rather than in any one journal.
 */
import type { JournalStats } from './types.js'

const counters = { fsyncs: 0, recordsSynced: 0 }

/** One fsync done, which made `records` records durable (0 for rotation/carry-forward fsyncs). */
export function countFsync(records: number): void {
  counters.fsyncs++
  counters.recordsSynced += records
}

export function journalStats(): JournalStats {
  return {
    fsyncs: counters.fsyncs,
    fsyncBatchAvg: counters.fsyncs === 0 ? 0 : counters.recordsSynced / counters.fsyncs,
  }
}
