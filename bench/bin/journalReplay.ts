/**
 * Journal replay speed: write N records (ADDs of `size`-byte items, every other one REMOVEd), then
 * replay them and report records/s. Build first (npm run build), then:
 *   node dist/bench/bin/journalReplay.js [records=1000000] [size=64] [budgetMiB=64]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { journalFactory } from '../../src/server/journal/index.js'

const records = Number(process.argv[2] ?? 1_000_000)
const size = Number(process.argv[3] ?? 64)
const budget = Number(process.argv[4] ?? 64) * 1024 * 1024

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'starling-bench-'))
  try {
    const options = { dir, queue: 'bench', sync: 'never' as const, maxJournalSize: 1 << 30, memoryBudgetBytes: budget }
    const { journal } = await journalFactory.open(options)
    const data = Buffer.alloc(size, 0x61)
    const noop = (): void => {}
    const adds = Math.ceil((records * 2) / 3)
    let written = 0
    const t0 = performance.now()
    for (let seq = 1; written < records; seq++) {
      journal.add({ seq, flags: 0, expiresAt: 0, addedAt: Date.now(), data }, noop, noop)
      written++
      // remove every other of the first half: a mix of ADD and REMOVE records
      if (seq % 2 === 0 && seq <= adds && written < records) {
        journal.remove(seq - 1)
        written++
      }
      if (written % 10_000 === 0) journal.flushNow()
    }
    journal.flushNow()
    const writeMs = performance.now() - t0
    const bytes = journal.sizeOnDisk
    await journal.close()

    for (let run = 1; run <= 3; run++) {
      const cpu0 = process.cpuUsage()
      const { journal: j, replay } = await journalFactory.open(options)
      const cpu = process.cpuUsage(cpu0)
      const cpuMs = (cpu.user + cpu.system) / 1000
      const rate = replay.records / (replay.durationMs / 1000)
      // CPU time too: on a shared machine wall time mostly measures the neighbours
      console.log(
        `replay #${run}: ${replay.records} records (${(bytes / 1048576).toFixed(1)} MiB), ${replay.items.length} items in memory, ` +
          `${replay.diskItems} on disk, ${replay.durationMs.toFixed(0)} ms = ${(rate / 1e6).toFixed(2)} M records/s ` +
          `(CPU ${cpuMs.toFixed(0)} ms = ${(replay.records / cpuMs / 1000).toFixed(2)} M records/CPU-s)`,
      )
      await j.close()
    }
    console.log(`(writing them took ${writeMs.toFixed(0)} ms = ${((records / writeMs) * 1000 / 1e6).toFixed(2)} M records/s)`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

void main()
