/**
 * The contract between the queue engine and the journal. The engine decides *what* happens to a
 * queue (FIFO order, open reads, expiry, limits, how much to keep in memory); the journal makes it
 * durable and gives it back after a restart. Nothing here knows about sockets or protocols.
 *
 * Semantics the engine relies on:
 * - Every item has a per-queue sequence number `seq`, strictly increasing in the order of `add`.
 *   A queue's items, in memory or on disk, are always in `seq` order (an aborted open read goes back
 *   to its place by `seq`).
 * - `add` appends an ADD record; `remove(seq)` appends a REMOVE record (a confirmed removal: a
 *   plain get, a /close, an expiry, a discard). Open reads are *not* journaled as removals until
 *   confirmed: after any restart, an open-but-unconfirmed item is simply still in the queue.
 *   A REMOVE may follow its ADD in the same batch (a get took a set not yet written).
 * - Records are batched and written once per event-loop turn (setImmediate), or at once on
 *   `flushNow()`. `onWritten` runs after the batch has been handed to the OS (write returned);
 *   `onDurable` after it is fsynced when the sync policy asks for that (group commit: one fsync at
 *   the end of the turn, or every record written while an fsync is in flight shares the next one),
 *   else together with onWritten.
 *   Callbacks run in record order. On a write error every record of the failed batch gets the
 *   error, the file is cut back to its last good length, and later batches may succeed again.
 * - Replay returns the live items (added and never removed) in seq order: the first ones in memory
 *   up to `memoryBudgetBytes`, the rest left on disk and fetched with `readBehind`.
 */

export interface JournalItem {
  /** Per-queue sequence number, strictly increasing in add order. */
  seq: number
  /** memcached client flags (u32). */
  flags: number
  /** Absolute expiry in ms since the epoch; 0 = never. */
  expiresAt: number
  /** When the item was first enqueued, ms since the epoch (for the age stat). */
  addedAt: number
  data: Buffer
}

/**
 * Where read-behind puts the items it reads back, one call per item, without an object per item
 * (a refill may be a million small items). The payload is src[start, end), valid only during the
 * call: copy it.
 */
export interface ItemSink {
  push(seq: number, flags: number, expiresAt: number, addedAt: number, src: Buffer, start: number, end: number): void
}

export type SyncPolicy = 'always' | 'never' | number

export type WriteCallback = (err: Error | null) => void

export interface JournalOptions {
  /** The spool directory. */
  dir: string
  /** The queue's name (any string of latin1 chars, i.e. raw key bytes). */
  queue: string
  sync: SyncPolicy
  /** Segment/reset threshold in bytes (`max_journal_size`; docs/architecture.md, limits). */
  maxJournalSize: number
  /** How many bytes of item payload replay may keep in memory before leaving the rest on disk. */
  memoryBudgetBytes: number
}

export interface ReplayResult {
  /** Live items kept in memory, seq order. */
  items: JournalItem[]
  /** Live items after `items`, left on disk (read them with readBehind). */
  diskItems: number
  diskBytes: number
  /** The next seq to assign. */
  nextSeq: number
  /** Records read, bytes cut from a torn/corrupt tail, and how long replay took. */
  records: number
  truncatedBytes: number
  durationMs: number
}

export interface JournalStats {
  fsyncs: number
  /** Records made durable per fsync, on average. */
  fsyncBatchAvg: number
  /** Journal files open now (at most max_open_journals, beyond fsyncs in flight). */
  openJournals?: number
}

export interface QueueJournal {
  readonly queue: string
  /** Bytes of this queue's journal files on disk (the `logsize` stat). */
  readonly sizeOnDisk: number
  /** Segment rotations / compactions done so far (stats). */
  readonly rotations: number

  add(item: JournalItem, onWritten: WriteCallback, onDurable: WriteCallback): void
  remove(seq: number, onWritten?: WriteCallback): void
  /**
   * Write the pending batch now (synchronously), running its onWritten callbacks. Under `always`
   * its onDurable callbacks may wait for the fsync at the end of the turn.
   */
  flushNow(): void
  /**
   * Under `sync: always`, an fsync is in flight, or records written wait for the one due at the end
   * of this turn (not all durable yet).
   */
  readonly syncing: boolean
  /**
   * Under `sync: always` while `syncing`: run `cb` once the fsyncs in flight or due now have
   * completed, and return true. Otherwise (nothing to sync, or another policy) return false.
   */
  afterInFlight(cb: () => void): boolean
  /** Create the journal file if it is not on disk yet (it is otherwise created by the first write). */
  persist(): void

  /**
   * The engine stopped keeping new items in memory: items with seq >= `fromSeq` are to be read
   * back from disk. Called at most once until readBehind reports it has caught up.
   */
  startReadBehind(fromSeq: number): void
  /**
   * Up to about `maxBytes` of the next live items from disk, in order, none with seq > `maxSeq`
   * (the newest item the engine has seen written). An empty result means read-behind caught up.
   */
  readBehind(maxBytes: number, maxSeq: number): JournalItem[]
  /**
   * The same, into `sink`, counting each item as its payload plus `perItemBytes` against
   * `maxBytes`. Returns how many items were read (0: caught up).
   */
  readBehindInto(maxBytes: number, maxSeq: number, sink: ItemSink, perItemBytes: number): number

  /** Drop every item (flush): crash-safely leave an empty journal. */
  reset(): Promise<void>
  /** Delete every file of this queue (delete). The journal is unusable afterwards. */
  destroy(): Promise<void>
  /** Records written to the OS but not yet fsynced (or a new file's directory entry): close must sync. */
  readonly owesCloseSync: boolean
  /**
   * Write and fsync what is pending, close files. `spoolSynced`: the spool's whole file system was
   * synced (JournalFactory.syncSpool) after every record of this journal was written, so nothing
   * written before now needs an fsync of its own.
   */
  close(spoolSynced?: boolean): Promise<void>
}

export interface JournalFactory {
  /** Queue names that have journal files in `dir` (decoded from file names). */
  listQueues(dir: string): Promise<string[]>
  /** Open (creating if needed) and replay one queue's journal. */
  open(options: JournalOptions): Promise<{ journal: QueueJournal; replay: ReplayResult }>
  /** Process-wide fsync counters. */
  stats(): JournalStats
  /**
   * Sync the whole file system of `dir` at once (syncfs(2)): at shutdown, one call instead of an
   * fsync per journal. False when it could not (not Linux, no `sync` tool, an error).
   */
  syncSpool?(dir: string): boolean
}
