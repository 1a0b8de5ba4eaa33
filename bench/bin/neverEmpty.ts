/**
 * Journal size of a queue that never empties: N items pass through one queue that always holds
 * about `live` of them (each add is followed by the removal of the oldest once `live` are queued),
 * with the default 16 MiB segments. Prints the peak and final bytes on disk. Build first, then:
 *   node dist/bench/bin/neverEmpty.js [items=10000000] [size=256] [live=1000]
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { journalFactory } from '../../src/server/journal/index.js'

const items = Number(process.argv[2] ?? 10_000_000)
const size = Number(process.argv[3] ?? 256)
const live = Number(process.argv[4] ?? 1000)
const MiB = 1024 * 1024

function spoolBytes(dir: string): number {
  let n = 0
  for (const f of readdirSync(dir)) n += statSync(join(dir, f)).size
  return n
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'starling-never-empty-'))
  try {
    const options = { dir, queue: 'bench', sync: 'never' as const, maxJournalSize: 16 * MiB, memoryBudgetBytes: 64 * MiB }
    const { journal } = await journalFactory.open(options)
    const data = Buffer.alloc(size, 0x61)
    const noop = (): void => {}
    let head = 1
    let peak = 0
    let written = 0
    const t0 = performance.now()
    for (let seq = 1; seq <= items; seq++) {
      journal.add({ seq, flags: 0, expiresAt: 0, addedAt: 0, data }, noop, noop)
      written += size
      if (seq - head >= live) journal.remove(head++)
      if (seq % 10_000 === 0) {
        journal.flushNow()
        peak = Math.max(peak, spoolBytes(dir))
      }
    }
    journal.flushNow()
    const seconds = (performance.now() - t0) / 1000
    const final = spoolBytes(dir)
    await journal.close()
    const { journal: again, replay } = await journalFactory.open(options)
    const liveAfter = replay.items.length + replay.diskItems
    await again.close()
    console.log(
      `${items} items of ${size} B through a queue holding ~${live}: ${(written / MiB).toFixed(0)} MiB of payload written in ${seconds.toFixed(1)} s; ` +
        `journal on disk peak ${(peak / MiB).toFixed(1)} MiB, final ${(final / MiB).toFixed(1)} MiB; ` +
        `${journal.rotations} rotations; ${liveAfter} live items after re-open (expected ${items - head + 1})`,
    )
    if (liveAfter !== items - head + 1) process.exitCode = 1
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

void main()
