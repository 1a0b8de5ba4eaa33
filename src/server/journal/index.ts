/**
 * The journal layer: durable, per-queue, segmented journals in the spool directory. A plain
 * barrel: README.md here says which file does what, and holds the format, the invariants and the
 * crash-safety argument.
 */
export type { JournalLogger } from './replay.js'
export { FileQueueJournal } from './queueJournal.js'
export { encodeQueueName, decodeQueueName, queueFileName } from './format.js'
export { setFaultInjector, setFsyncObserver, FAILPOINTS, type FaultInjector, type FaultContext, type FailpointName } from './fileOps.js'
export { createJournalFactory, journalFactory, type JournalFactoryOptions } from './spool.js'
export { openJournals, defaultMaxOpenJournals, fdSoftLimit } from './fdCache.js'
export * from './types.js'
export { importStarlingSpool, parseStarlingJournal, STARLING_BAK_SUFFIX, type StarlingImportResult } from './starlingImport.js'
