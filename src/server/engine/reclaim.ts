/**
 * One full garbage collection on request, to give memory back to the OS after a burst of garbage
 * that V8 would otherwise keep for a long time. Replay and the first read of each queue's items
 * allocate big read buffers (4 MiB chunks) that are dropped when the queue is loaded; V8 frees an
 * ArrayBuffer only when a GC finds it dead, and external memory that small never triggers one, so
 * after a restart the server kept ~10 MiB of dead buffers (and the old-space pages replay grew)
 * for as long as it ran idle.
 *
 * `gc` is not exposed without --expose-gc: the flag is set at run time and the function taken from
 * a fresh context (it is exposed to contexts made after the flag is set). Never on a hot path: a
 * full GC holds the event loop for as long as it marks the live heap.
 */
import v8 from 'node:v8'
import vm from 'node:vm'

type GcFunction = () => void

let gcFn: GcFunction | null | undefined

/** V8's `gc()`, without a command-line flag (looked up once); null if this V8 refuses it. */
export function exposedGc(): GcFunction | null {
  if (gcFn !== undefined) return gcFn
  const own = (globalThis as { gc?: unknown }).gc
  if (typeof own === 'function') return (gcFn = own as GcFunction)
  try {
    v8.setFlagsFromString('--expose-gc')
    const fn: unknown = vm.runInNewContext('gc')
    gcFn = typeof fn === 'function' ? (fn as GcFunction) : null
  } catch {
    gcFn = null
  } finally {
    v8.setFlagsFromString('--no-expose-gc') // contexts made later (vm users) get no `gc`
  }
  return gcFn
}

/**
 * Run one full GC now; false if the runtime offers none. Dead ArrayBuffers are freed before it
 * returns: V8 otherwise frees their memory on a background thread after the GC, so what the caller
 * reads right after (the 'replay complete' line) still counted a dead 4 MiB chunk about one time
 * in four (a plain script: 28-46 of 200 GCs). The flag is read at each GC, so it is set for this
 * one only.
 */
export function collectGarbage(): boolean {
  const gc = exposedGc()
  if (gc === null) return false
  v8.setFlagsFromString('--no-concurrent-array-buffer-sweeping')
  try {
    gc()
  } finally {
    v8.setFlagsFromString('--concurrent-array-buffer-sweeping')
  }
  return true
}
