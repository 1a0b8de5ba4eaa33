/**
 * The `stats` reply, parsed: numbers where the value is a number, strings otherwise, and the
 * per-queue fields (`queue_<q>_items`, `queue_<q>_total_items`, ...) grouped by queue.
 */
import { keyFromWire } from './protocol.js'

export type ServerStats = Record<string, number | string>

export interface QueueStats {
  items: number
  total_items: number
  logsize: number
  expired_items: number
  age: number
  /** This server's fields, after Starling's: payload bytes, open reads, blocked readers, ... */
  bytes?: number
  open_transactions?: number
  waiters?: number
  /** Items / payload bytes held in memory (the rest is read back from the journal). */
  mem_count?: number
  mem_bytes?: number
  discarded?: number
  journal_rotations?: number
  /** Only on fanout children (`parent+child`): the parent queue. */
  fanout_parent?: string
  /** Any further per-queue fields the server sends. */
  [field: string]: number | string | undefined
}

const NUMBER = /^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/

export function parseStats(pairs: ReadonlyArray<readonly [string, string]>): ServerStats {
  const stats: ServerStats = {}
  for (const [name, value] of pairs) stats[keyFromWire(name)] = NUMBER.test(value) ? Number(value) : value
  return stats
}

/**
 * Group `queue_<q>_<field>` entries by queue. Queue names may contain `_`, so names are not split
 * on it. The server sends each queue's fields together, `queue_<q>_items` then
 * `queue_<q>_total_items` first (docs/architecture.md, "Stats"): a `queue_<x>_items` entry
 * followed by `queue_<x>_total_items` starts queue `<x>`; any other `queue_` entry belongs to the
 * queue being read if it continues that queue's prefix.
 */
export function queueStats(stats: ServerStats): Record<string, QueueStats> {
  const queues: Record<string, QueueStats> = {}
  const entries = Object.entries(stats).filter(([name]) => name.startsWith('queue_'))
  let current: string | undefined
  for (let i = 0; i < entries.length; i++) {
    const [name, value] = entries[i]!
    const candidate = name.endsWith('_items') ? name.slice('queue_'.length, -'_items'.length) : undefined
    const startsQueue =
      candidate !== undefined &&
      candidate.length > 0 &&
      (entries[i + 1]?.[0] === `queue_${candidate}_total_items` || current === undefined || !name.startsWith(`queue_${current}_`))
    if (startsQueue) {
      current = candidate
      queues[current] = { items: Number(value), total_items: 0, logsize: 0, expired_items: 0, age: 0 }
    } else if (current !== undefined && name.startsWith(`queue_${current}_`)) {
      queues[current]![name.slice(`queue_${current}_`.length)] = value
    }
  }
  return queues
}
