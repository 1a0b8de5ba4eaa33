/**
 * Byte-level helpers shared by the text and meta parsers: split a command line into tokens by
 * offsets (no string building) and read numbers straight from the bytes.
 */

const SPACE = 0x20
const ZERO = 0x30
const NINE = 0x39
const MINUS = 0x2d

/**
 * The tokens of one command line, as [start, end) offsets into `buf`. One instance is reused for
 * every line (parsing is synchronous), so tokenizing allocates nothing once the arrays have grown.
 */
export class Tokens {
  buf: Buffer = Buffer.alloc(0)
  readonly starts: number[] = []
  readonly ends: number[] = []
  count = 0

  /** Split buf[from, to) on spaces; runs of spaces are one separator (as memcached's tokenizer). */
  split(buf: Buffer, from: number, to: number): number {
    this.buf = buf
    let count = 0
    let i = from
    while (i < to) {
      while (i < to && buf[i] === SPACE) i++
      if (i === to) break
      const s = i
      while (i < to && buf[i] !== SPACE) i++
      this.starts[count] = s
      this.ends[count] = i
      count++
    }
    this.count = count
    return count
  }

  length(i: number): number {
    return this.ends[i]! - this.starts[i]!
  }

  /** The token as a latin1 string (one char per byte, so keys round-trip byte for byte). */
  text(i: number): string {
    return this.buf.toString('latin1', this.starts[i]!, this.ends[i]!)
  }

  /**
   * A key token as a string: the last key's string again when the bytes are the same (a client
   * names the same queue command after command: no latin1 decode and no new string per command,
   * issue 13). Strings are immutable, so sharing one is never visible.
   */
  key(i: number): string {
    const s = this.starts[i]!
    const len = this.ends[i]! - s
    const last = this.lastKey
    if (len === last.length) {
      let k = 0
      while (k < len && this.buf[s + k] === last.charCodeAt(k)) k++
      if (k === len) return last
    }
    return (this.lastKey = this.buf.toString('latin1', s, s + len))
  }

  private lastKey = ''

  /** The token without its first byte (a meta flag's value). */
  valueText(i: number): string {
    return this.buf.toString('latin1', this.starts[i]! + 1, this.ends[i]!)
  }

  /** First byte of the token (a meta flag letter). */
  firstByte(i: number): number {
    return this.buf[this.starts[i]!]!
  }

  /** Whether the token equals an ASCII word, compared byte by byte. */
  is(i: number, word: string): boolean {
    const s = this.starts[i]!
    if (this.ends[i]! - s !== word.length) return false
    for (let k = 0; k < word.length; k++) {
      if (this.buf[s + k] !== word.charCodeAt(k)) return false
    }
    return true
  }

  /** Unsigned decimal (digits only) of token i, skipping `skip` leading bytes; -1 if malformed. */
  unsigned(i: number, skip = 0, maxValue = Number.MAX_SAFE_INTEGER): number {
    return parseUnsigned(this.buf, this.starts[i]! + skip, this.ends[i]!, maxValue)
  }

  /** Signed decimal of token i (optional leading '-'); NaN if malformed. */
  signed(i: number, skip = 0): number {
    return parseSigned(this.buf, this.starts[i]! + skip, this.ends[i]!)
  }
}

/** Digits only, 1..16 of them, at most maxValue; -1 otherwise. */
export function parseUnsigned(buf: Buffer, start: number, end: number, maxValue = Number.MAX_SAFE_INTEGER): number {
  const n = end - start
  if (n <= 0 || n > 16) return -1
  let value = 0
  for (let i = start; i < end; i++) {
    const c = buf[i]!
    if (c < ZERO || c > NINE) return -1
    value = value * 10 + (c - ZERO)
  }
  return value > maxValue ? -1 : value
}

/** An optional '-' then digits (at most 16); NaN otherwise. */
export function parseSigned(buf: Buffer, start: number, end: number): number {
  if (start < end && buf[start] === MINUS) {
    const v = parseUnsigned(buf, start + 1, end)
    return v < 0 ? NaN : -v
  }
  const v = parseUnsigned(buf, start, end)
  return v < 0 ? NaN : v
}

/** Index of the first '\n' in buf[start, end), or -1. Bounded by `end`, never by buf.length. */
export function findNewline(buf: Buffer, start: number, end: number): number {
  const i = buf.indexOf(0x0a, start)
  return i >= 0 && i < end ? i : -1
}
