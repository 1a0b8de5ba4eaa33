/**
 * Queue names in sorted order for `stats`, without sorting 100k names on every call: the last
 * sorted list is kept, names created since are appended, and the sort (TimSort, which runs in near
 * linear time on an almost sorted array) merges them in. Deleted names are filtered out then.
 */
const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

export class SortedNames {
  private sorted: string[] = []
  private added: string[] = []
  private removed = false

  add(name: string): void {
    this.added.push(name)
  }

  remove(): void {
    this.removed = true
  }

  /** Sorted, without duplicates; `exists` says which names are still there. */
  list(exists: (name: string) => boolean): readonly string[] {
    if (this.added.length === 0 && !this.removed) return this.sorted
    const next = this.removed ? this.sorted.filter(exists) : this.sorted
    for (const name of this.added) if (exists(name)) next.push(name)
    next.sort(byCodeUnit)
    // A name deleted and created again is in both lists.
    let w = 0
    for (let r = 0; r < next.length; r++) if (r === 0 || next[r] !== next[w - 1]) next[w++] = next[r]!
    next.length = w
    this.sorted = next
    this.added = []
    this.removed = false
    return next
  }
}
