/**
 * Journal test helpers: temp spools, item builders, promisified appends.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { journalFactory } from '../../src/server/journal/index.js'
import type { JournalItem, JournalOptions, QueueJournal, ReplayResult } from '../../src/server/journal/types.js'

export function tempSpool(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'starling-journal-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

export function item(seq: number, data?: string | Buffer, flags = 0): JournalItem {
  return {
    seq,
    flags,
    expiresAt: 0,
    addedAt: 1_700_000_000_000 + seq,
    data: Buffer.isBuffer(data) ? data : Buffer.from(data ?? `item-${seq}`),
  }
}

export function open(dir: string, o: Partial<JournalOptions> = {}): Promise<{ journal: QueueJournal; replay: ReplayResult }> {
  return journalFactory.open({
    dir,
    queue: 'q',
    sync: 'never',
    maxJournalSize: 16 * 1024 * 1024,
    memoryBudgetBytes: 64 * 1024 * 1024,
    ...o,
  })
}

/** add() as a promise resolving when durable (rejecting on error). */
export function addDurable(j: QueueJournal, it: JournalItem): Promise<void> {
  return new Promise((resolve, reject) => {
    let writtenErr: Error | null = null
    j.add(
      it,
      (err) => {
        writtenErr = err
      },
      (err) => {
        const e = err ?? writtenErr
        if (e) reject(e)
        else resolve()
      },
    )
  })
}

/** add() collecting results: returns the written/durable outcome. */
export function addOutcome(j: QueueJournal, it: JournalItem): Promise<{ written: Error | null; durable: Error | null }> {
  return new Promise((resolve) => {
    let written: Error | null | undefined
    j.add(
      it,
      (err) => {
        written = err
      },
      (err) => resolve({ written: written ?? null, durable: err }),
    )
  })
}

export function seqsOf(items: JournalItem[]): number[] {
  return items.map((i) => i.seq)
}

export function range(from: number, to: number): number[] {
  const out: number[] = []
  for (let i = from; i <= to; i++) out.push(i)
  return out
}

/** Every live item: memory ones, then the rest through read-behind. */
export function allItems(j: QueueJournal, replay: ReplayResult): JournalItem[] {
  const out = [...replay.items]
  if (replay.diskItems > 0) {
    for (;;) {
      const more = j.readBehind(64 * 1024, Number.MAX_SAFE_INTEGER)
      if (more.length === 0) break
      out.push(...more)
    }
  }
  return out
}
