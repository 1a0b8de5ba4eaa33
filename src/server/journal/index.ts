/**
 * The journal layer: durable, per-queue, segmented journals in the spool directory.
 * See format.ts for the on-disk format, replay.ts for recovery, queueJournal.ts for batching,
 * fsync policy and compaction, spool.ts for the spool index and the journal factory, fdCache.ts for
 * the LRU of open journal files, starlingImport.ts for reading an old Starling spool.
 */
export type { JournalLogger } from './replay.js'
export { FileQueueJournal } from './queueJournal.js'
export { encodeQueueName, decodeQueueName, queueFileName } from './format.js'
export { setFaultInjector, setFsyncObserver, FAILPOINTS, type FaultInjector, type FaultContext, type FailpointName } from './fileOps.js'
export { createJournalFactory, journalFactory, type JournalFactoryOptions } from './spool.js'
export { openJournals, defaultMaxOpenJournals, fdSoftLimit } from './fdCache.js'
export * from './types.js'
export { importStarlingSpool, parseStarlingJournal, STARLING_BAK_SUFFIX, type StarlingImportResult } from './starlingImport.js'
