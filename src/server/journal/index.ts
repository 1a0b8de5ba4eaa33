/**
 * The journal layer: durable, per-queue, segmented journals in the spool directory.
 * See README.md here for the format, the invariants and the crash-safety argument, and for which
 * file does what (queueJournal.ts coordinates one open journal; starlingImport.ts reads an old
 * Starling spool).
 */
import * as fs from 'node:fs'
import { join } from 'node:path'
import {
  decodeHeader,
  decodeQueueName,
  encodeQueueName,
  FLAG_DELETED,
  isHashedName,
  parseSegmentFileName,
  segmentFileName,
} from './format.js'
import { fsyncDir } from './fileOps.js'
import { journalStats } from './counters.js'
import { FileQueueJournal } from './queueJournal.js'
import { replaySegments, silentLogger, type JournalLogger } from './replay.js'
import { readSegmentHeader } from './segment.js'
import type { JournalFactory, JournalOptions, QueueJournal, ReplayResult } from './types.js'

export type { JournalLogger } from './replay.js'
export { FileQueueJournal } from './queueJournal.js'
export { encodeQueueName, decodeQueueName, queueFileName } from './format.js'
export { setFaultInjector, setFsyncObserver, FAILPOINTS, type FaultInjector, type FaultContext, type FailpointName } from './fileOps.js'
export * from './types.js'

async function listQueues(dir: string, logger: JournalLogger): Promise<string[]> {
  let files: string[]
  try {
    files = fs.readdirSync(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const byName = new Map<string, number[]>()
  for (const file of files) {
    const seg = parseSegmentFileName(file)
    if (!seg) continue
    const list = byName.get(seg.encoded)
    if (list) list.push(seg.segno)
    else byName.set(seg.encoded, [seg.segno])
  }
  const out: string[] = []
  for (const [encoded, segnos] of byName) {
    segnos.sort((a, b) => a - b)
    const lastPath = join(dir, segmentFileName(encoded, segnos[segnos.length - 1]!))
    let header: ReturnType<typeof decodeHeader> | undefined
    try {
      header = readSegmentHeader(lastPath)
    } catch {
      header = undefined
    }
    if (header !== undefined && typeof header !== 'string' && (header.flags & FLAG_DELETED) !== 0) {
      // an interrupted delete: finish it
      for (const segno of segnos) fs.rmSync(join(dir, segmentFileName(encoded, segno)), { force: true })
      fsyncDir(dir)
      logger.info({ queue: header.queue }, 'completed an interrupted queue delete')
      continue
    }
    let name: string | undefined
    if (!isHashedName(encoded)) name = decodeQueueName(encoded)
    else if (header !== undefined && typeof header !== 'string' && encodeQueueName(header.queue) === encoded) name = header.queue
    if (name === undefined) {
      logger.warn({ dir, file: encoded }, 'journal file with an undecodable queue name ignored')
      continue
    }
    out.push(name)
  }
  return out.sort()
}

export interface JournalFactoryOptions {
  /** Where replay reports damage and compaction reports its work (pino-compatible). */
  logger?: JournalLogger
}

export function createJournalFactory(options: JournalFactoryOptions = {}): JournalFactory {
  const logger = options.logger ?? silentLogger
  return {
    listQueues: (dir) => listQueues(dir, logger),
    async open(o: JournalOptions): Promise<{ journal: QueueJournal; replay: ReplayResult }> {
      const started = performance.now()
      fs.mkdirSync(o.dir, { recursive: true, mode: 0o700 })
      const encoded = encodeQueueName(o.queue)
      const state = replaySegments(o.dir, encoded, o.queue, logger)
      const journal = new FileQueueJournal(
        { dir: o.dir, queue: o.queue, encoded, sync: o.sync, maxJournalSize: o.maxJournalSize, logger },
        state,
      )
      const initial = journal.loadInitial(o.memoryBudgetBytes)
      const replay: ReplayResult = {
        items: initial.items,
        diskItems: initial.diskItems,
        diskBytes: initial.diskBytes,
        nextSeq: state.nextSeq,
        records: state.records,
        truncatedBytes: state.truncatedBytes,
        durationMs: performance.now() - started,
      }
      return { journal, replay }
    },
    stats: journalStats,
  }
}

/** The journal factory the server uses (silent; use createJournalFactory to get logs). */
export const journalFactory: JournalFactory = createJournalFactory()
export { importStarlingSpool, parseStarlingJournal, STARLING_BAK_SUFFIX, type StarlingImportResult } from './starlingImport.js'
