/**
 * Under `sync: always`, where a journal's end-of-turn fsync runs (issue 13): on the event loop,
 * as Redis does with `appendfsync always`, or on the thread pool (groupCommit.ts, pipelined).
 *
 * On the event loop, one fdatasync at the end of the turn covers every set the turn read, and the
 * replies go out right after it: no hand-off to a pool thread and back, and no fsync started for a
 * part of a turn while the rest of it waits for the next one. On this machine's disk (fdatasync
 * ~0.2 ms) that gave +12% items/s on mixed load and +9% on fill, with a third of the fsyncs.
 * But the loop does nothing else meanwhile, so it is used only while fsyncs are fast:
 * - at most TURN_BUDGET_MS of inline fsyncs in one turn: with many queues written in one turn,
 *   the first ones sync inline and the rest in parallel on the pool;
 * - only while the recent fsyncs (a moving average over inline and pool ones) took less than
 *   SLOW_FSYNC_MS: on a slow or busy disk the loop keeps serving other queues and clients while
 *   fsyncs run, and pipelined pool fsyncs wait about one fsync, not one and a half.
 */

/** Inline fsync time allowed in one event-loop turn, all journals together. */
export const TURN_BUDGET_MS = 2
/** Above this average fsync time, fsyncs go to the thread pool. */
export const SLOW_FSYNC_MS = 2
/** Weight of the newest fsync in the moving average. */
const WEIGHT = 0.1

/** Test hook: with STARLING_FSYNC_POOL=1 every fsync runs on the pool (tests that hold one in flight). */
const POOL_ONLY = process.env['STARLING_FSYNC_POOL'] === '1'

let spentThisTurn = 0
let resetQueued = false
let average = 0

function newTurn(): void {
  spentThisTurn = 0
  resetQueued = false
}

/** May the end-of-turn fsync about to run block the event loop? */
export function mayFsyncInline(): boolean {
  return !POOL_ONLY && spentThisTurn < TURN_BUDGET_MS && average < SLOW_FSYNC_MS
}

/** An fsync (with its directory fsync, if any) took `ms`; `inline`: on the event loop. */
export function fsyncTook(ms: number, inline: boolean): void {
  average += (ms - average) * WEIGHT
  if (!inline) return
  spentThisTurn += ms
  // Queued from the check phase, where end-of-turn flushes run: it runs at the next turn's.
  if (!resetQueued) {
    resetQueued = true
    setImmediate(newTurn)
  }
}

/** The moving average, in ms (tests, diagnostics). */
export function averageFsyncMs(): number {
  return average
}

/** Start the history again from this average (tests: a slow disk is `resetTurnSync(10)`). */
export function resetTurnSync(averageMs = 0): void {
  average = averageMs
  newTurn()
}
