/**
 * A reply held back until a journal record is written. A confirmed open read (`/close`) is gone
 * only once its REMOVE record reaches the OS; answering earlier would let `kill -9` in between
 * bring back a read the client was told is closed (every reply follows its record:
 * docs/architecture.md, "Durability rules").
 */
export function holdUntil<A extends unknown[]>(done: (...args: A) => void, start: (release: () => void) => void): (...args: A) => void {
  let released = false
  let held: A | null = null
  start(() => {
    released = true
    if (held) done(...held)
  })
  return (...args: A) => {
    if (released) done(...args)
    else held = args
  }
}
