/**
 * Kestrel's fanout rule: a queue named `parent+child` receives a copy of every item set on
 * `parent`. The parent is the part before the FIRST `+`: `a+b+c` is a child of `a` (not of `a+b`).
 * A child exists from its first use — a set, or any get on it, even `/peek` — and is durable.
 */
export const FANOUT_SEPARATOR = '+'

/** The parent of a fanout child, or null for a plain queue. */
export function fanoutParent(name: string): string | null {
  const i = name.indexOf(FANOUT_SEPARATOR)
  return i > 0 && i < name.length - 1 ? name.slice(0, i) : null
}
