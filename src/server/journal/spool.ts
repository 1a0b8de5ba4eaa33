/**
 * The spool directory as a whole: listed once at start-up into an index (queue → segment numbers),
 * so opening a queue never scans the directory again (a scan per queue made creating N queues cost
 * O(N²)); and the journal factory the engine opens queues with.
 *
 * Listing reads a segment header only where the file name cannot tell: a hashed (long) name, or a
 * queue with several segments (an interrupted delete leaves a DELETED tombstone last; it is
 * finished here and the queue is not listed). A lone tombstone (a crash between the last unlink and
 * the tombstone's own) is finished by replay and gives an empty queue with no files.
 */
import * as fs from 'node:fs'
import { join } from 'node:path'
import {
  decodeQueueName,
  encodeQueueName,
  FLAG_DELETED,
  isHashedName,
  parseSegmentFileName,
  parseTmpFileName,
  segmentFileName,
} from './format.js'
import { fsyncDir } from './fileOps.js'
import { openJournals } from './fdCache.js'
import { journalStats } from './counters.js'
import { syncFileSystem } from './syncSpool.js'
import { FileQueueJournal, type JournalShared } from './queueJournal.js'
import { replaySegments, silentLogger, type JournalLogger } from './replay.js'
import { readSegmentHeader } from './segment.js'
import type { JournalFactory, JournalOptions, QueueJournal, ReplayResult } from './types.js'

/** encoded queue name → its segment numbers, ascending. */
type SpoolIndex = Map<string, number[]>

function readIndex(dir: string): SpoolIndex {
  let files: string[]
  try {
    files = fs.readdirSync(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map()
    throw err
  }
  const byName: SpoolIndex = new Map()
  for (const file of files) {
    const seg = parseSegmentFileName(file)
    if (seg) {
      const list = byName.get(seg.encoded)
      if (list) list.push(seg.segno)
      else byName.set(seg.encoded, [seg.segno])
    } else if (parseTmpFileName(file)) {
      // a segment whose creation never completed: it was never part of a journal
      fs.rmSync(join(dir, file), { force: true })
    }
  }
  for (const segnos of byName.values()) segnos.sort((a, b) => a - b)
  return byName
}

function listQueues(dir: string, index: SpoolIndex, logger: JournalLogger): string[] {
  const out: string[] = []
  for (const [encoded, segnos] of index) {
    const hashed = isHashedName(encoded)
    let header: ReturnType<typeof readSegmentHeader> | undefined
    if (hashed || segnos.length > 1) {
      try {
        header = readSegmentHeader(join(dir, segmentFileName(encoded, segnos[segnos.length - 1]!)))
      } catch {
        header = undefined
      }
    }
    if (header !== undefined && typeof header !== 'string' && (header.flags & FLAG_DELETED) !== 0) {
      // an interrupted delete: finish it
      for (const segno of segnos) fs.rmSync(join(dir, segmentFileName(encoded, segno)), { force: true })
      fsyncDir(dir)
      index.delete(encoded)
      logger.info({ queue: header.queue }, 'completed an interrupted queue delete')
      continue
    }
    let name: string | undefined
    if (!hashed) name = decodeQueueName(encoded)
    else if (header !== undefined && typeof header !== 'string' && encodeQueueName(header.queue) === encoded) name = header.queue
    if (name === undefined) {
      logger.warn({ dir, file: encoded }, 'journal file with an undecodable queue name ignored')
      index.delete(encoded)
      continue
    }
    out.push(name)
  }
  return out.sort()
}

export interface JournalFactoryOptions {
  /** Where replay reports damage and compaction reports its work (pino-compatible). */
  logger?: JournalLogger
  /** Cap on open journal fds, process-wide (`max_open_journals`); default: fdCache's. */
  maxOpenJournals?: number
}

export function createJournalFactory(options: JournalFactoryOptions = {}): JournalFactory {
  const logger = options.logger ?? silentLogger
  if (options.maxOpenJournals !== undefined && options.maxOpenJournals > 0) openJournals.capacity = options.maxOpenJournals
  /** Spool directories listed by listQueues: what is left of their index (queues not yet opened). */
  const indexes = new Map<string, SpoolIndex>()
  /** One JournalShared per directory and policy: a settings object per queue was 72 B (issue 17). */
  const shared = new Map<string, JournalShared>()
  const sharedFor = (o: JournalOptions): JournalShared => {
    const key = `${o.sync}\n${o.maxJournalSize}\n${o.dir}`
    let s = shared.get(key)
    if (s === undefined) shared.set(key, (s = { dir: o.dir, sync: o.sync, maxJournalSize: o.maxJournalSize, logger }))
    return s
  }
  return {
    async listQueues(dir) {
      const index = readIndex(dir)
      indexes.set(dir, index)
      return listQueues(dir, index, logger)
    },
    async open(o: JournalOptions): Promise<{ journal: QueueJournal; replay: ReplayResult }> {
      const started = performance.now()
      const encoded = encodeQueueName(o.queue)
      // From the index when the spool was listed: a queue not in it has no files (it is new, or
      // was opened once already and then deleted); the journal owns its segments from now on.
      const index = indexes.get(o.dir)
      let listedSegnos: number[] | undefined
      if (index) {
        listedSegnos = index.get(encoded) ?? []
        index.delete(encoded)
      } else {
        fs.mkdirSync(o.dir, { recursive: true, mode: 0o700 })
      }
      const state = replaySegments(o.dir, encoded, o.queue, logger, listedSegnos)
      const journal = new FileQueueJournal(sharedFor(o), o.queue, encoded, state)
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
    stats: () => ({ ...journalStats(), openJournals: openJournals.size }),
    syncSpool: syncFileSystem,
  }
}

/** The journal factory tests and tools use (silent; use createJournalFactory to get logs). */
export const journalFactory: JournalFactory = createJournalFactory()
