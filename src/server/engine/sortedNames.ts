/**
 * Queue names in sorted order for `stats`, without sorting 100k names on every call: the last
 * sorted list is kept, names created since are appended, and the sort (TimSort, which runs in near
 * linear time on an almost sorted array) merges them in. Deleted names are filtered out then.
 *
 * Without a `stats`, names created and deleted would pile up in those lists: once the names
 * appended or removed since the last sort outnumber the sorted ones (and at least
 * SETTLE_AFTER), the lists are settled right away, so they hold O(live names) however many queues
 * come and go (amortised O(log n) a name).
 */
const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** Changes left unsettled, at least: below this, settling is not worth a pass. */
const SETTLE_AFTER = 1024

export class SortedNames {
  private sorted: string[] = []
  private added: string[] = []
  private removals = 0

  /** `exists` says which names are still there (names removed since are filtered out). */
  constructor(private readonly exists: (name: string) => boolean) {}

  add(name: string): void {
    this.added.push(name)
    if (this.added.length > Math.max(SETTLE_AFTER, this.sorted.length)) this.list()
  }

  remove(): void {
    this.removals++
    if (this.removals > Math.max(SETTLE_AFTER, this.sorted.length >> 1)) this.list()
  }

  /** Sorted, without duplicates. */
  list(): readonly string[] {
    if (this.added.length === 0 && this.removals === 0) return this.sorted
    const exists = this.exists
    const next = this.removals > 0 ? this.sorted.filter(exists) : this.sorted
    for (const name of this.added) if (exists(name)) next.push(name)
    next.sort(byCodeUnit)
    // A name deleted and created again is in both lists.
    let w = 0
    for (let r = 0; r < next.length; r++) if (r === 0 || next[r] !== next[w - 1]) next[w++] = next[r]!
    next.length = w
    this.sorted = next
    this.added = []
    this.removals = 0
    return next
  }
}
