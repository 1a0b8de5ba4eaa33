/**
 * The memcached text protocol parser: bytes in, one typed command out. Pure: it reads
 * buf[start, end), allocates only the command it returns (and the key strings), never converts a
 * data block to a string, and keeps no state between calls — the handler owns the framing
 * (expect / discard / resync) the result asks for. Meta commands share the line framing and are
 * parsed in meta.ts.
 *
 * Framing rules (memcached's; docs/architecture.md, "Protocols"):
 * - a command line ends in "\r\n" or a bare "\n";
 * - a line with no newline within maxLineLength bytes is an error that closes the connection, so a
 *   client cannot make us buffer without bound (decided on the first maxLineLength + 2 bytes, so the
 *   outcome does not depend on how the input was split into packets);
 * - a storage command's data block is exactly <bytes> bytes then "\r\n"; anything else is a bad
 *   data chunk, after which input is skipped through the next newline;
 * - a declared length over maxItemSize is refused at once and its data block discarded unread.
 */
import { StarlingError } from '../../errors.js'
import type { ProtocolLimits } from '../limits.js'
import { badCommandLine, command, failure, type ParseResult, type TextCommand } from './commands.js'
import { parseMetaCommand } from './metaParser.js'
import { Tokens, findNewline } from './tokens.js'

const CR = 0x0d
const LF = 0x0a

const NEED_LINE: ParseResult = Object.freeze({ kind: 'incomplete', expectBytes: 0 }) as ParseResult

/** memcached limits flags to 32 bits. */
export const MAX_FLAGS = 0xffffffff
/** Longest data block length accepted in a header before it is compared with maxItemSize. */
const MAX_DECLARED_LENGTH = 2 ** 31 - 3

/** Reused across calls: parsing is synchronous and a result never refers to it. */
const tokens = new Tokens()

export function parseCommand(buf: Buffer, start: number, end: number, limits: ProtocolLimits): ParseResult {
  const window = limits.maxLineLength + 2
  const nl = findNewline(buf, start, Math.min(end, start + window))
  if (nl < 0) {
    if (end - start >= window) return lineTooLong(end - start)
    return NEED_LINE
  }
  const lineEnd = nl > start && buf[nl - 1] === CR ? nl - 1 : nl
  if (lineEnd - start > limits.maxLineLength) return lineTooLong(end - start)
  const lineLength = nl + 1 - start
  const n = tokens.split(buf, start, lineEnd)
  if (n === 0) return command(lineLength, UNKNOWN)
  // The two hot commands by their bytes: no string for the command name.
  if (tokens.is(0, 'set')) return parseStorage('set', n, buf, start, end, lineLength, limits)
  if (tokens.is(0, 'get')) return parseGet(false, n, lineLength)
  const name = tokens.text(0)
  switch (name) {
    case 'get':
    case 'gets':
      return parseGet(name === 'gets', n, lineLength)
    case 'set':
    case 'add':
    case 'replace':
    case 'append':
    case 'prepend':
    case 'cas':
      return parseStorage(name, n, buf, start, end, lineLength, limits)
    case 'delete':
      return parseDelete(n, lineLength)
    case 'flush':
      return parseFlush(n, lineLength)
    case 'flush_all':
      return parseFlushAll(n, lineLength)
    case 'stats':
      if (n > 2) return badFormat(lineLength)
      return command(lineLength, { type: 'stats', queue: n === 2 ? tokens.text(1) : null })
    case 'version':
      return command(lineLength, n === 1 ? VERSION : UNKNOWN)
    case 'verbosity':
      return parseVerbosity(n, lineLength)
    case 'quit':
      return command(lineLength, n === 1 ? QUIT : UNKNOWN)
    case 'shutdown':
      // memcached also takes `shutdown graceful`; both mean the same clean shutdown here.
      return command(lineLength, n === 1 || (n === 2 && tokens.is(1, 'graceful')) ? SHUTDOWN : UNKNOWN)
    case 'incr':
    case 'decr':
    case 'touch':
    case 'gat':
    case 'gats':
      return command(lineLength, { type: 'refused', name, noreply: tokens.is(n - 1, 'noreply') })
    case 'mg':
    case 'ms':
    case 'md':
    case 'mn':
    case 'me':
    case 'ma':
      return parseMetaCommand(name, tokens, buf, start, end, lineLength, limits)
    default:
      return command(lineLength, UNKNOWN)
  }
}

/**
 * After a bad data chunk: how many bytes of buf[start, end) to skip to get back in step — through
 * the next newline (`found`), or everything buffered if there is none yet.
 */
export function skipThroughNewline(buf: Buffer, start: number, end: number): { consumed: number; found: boolean } {
  const nl = findNewline(buf, start, end)
  return nl < 0 ? { consumed: end - start, found: false } : { consumed: nl + 1 - start, found: true }
}

// ---- commands --------------------------------------------------------------------------------

const UNKNOWN: TextCommand = Object.freeze({ type: 'unknown' })
const VERSION: TextCommand = Object.freeze({ type: 'version' })
const QUIT: TextCommand = Object.freeze({ type: 'quit' })
const SHUTDOWN: TextCommand = Object.freeze({ type: 'shutdown' })

function parseGet(withCas: boolean, n: number, lineLength: number): ParseResult {
  if (n < 2) return badFormat(lineLength)
  const keys = new Array<string>(n - 1)
  for (let i = 1; i < n; i++) keys[i - 1] = tokens.key(i)
  return command(lineLength, { type: 'get', keys, withCas })
}

function parseStorage(
  name: string,
  n: number,
  buf: Buffer,
  start: number,
  end: number,
  lineLength: number,
  limits: ProtocolLimits,
): ParseResult {
  // <name> <key> <flags> <exptime> <bytes> [<cas unique>] [noreply]
  const fields = name === 'cas' ? 6 : 5
  if (n !== fields && n !== fields + 1) return badFormat(lineLength)
  const noreply = n === fields + 1
  if (noreply && !tokens.is(fields, 'noreply')) return badFormat(lineLength)
  const bytes = tokens.unsigned(4, 0, MAX_DECLARED_LENGTH)
  // Without a trustworthy length the data block cannot be skipped: memcached does the same.
  if (bytes < 0) return badFormat(lineLength)
  if (bytes > limits.maxItemSize) {
    return failure(lineLength, new StarlingError('TOO_LARGE', 'object too large for cache'), { discard: bytes + 2, noreply })
  }
  const flags = tokens.unsigned(2, 0, MAX_FLAGS)
  const exptime = tokens.signed(3)
  const casOk = name !== 'cas' || isU64(5)
  if (flags < 0 || Number.isNaN(exptime) || !casOk) {
    // The length is sound, so skip the data block and stay in step.
    return failure(lineLength, badCommandLine(), { discard: bytes + 2 })
  }
  const total = lineLength + bytes + 2
  if (end - start < total) return { kind: 'incomplete', expectBytes: total, headerBytes: lineLength, noreply }
  const dataStart = start + lineLength
  const dataEnd = dataStart + bytes
  if (buf[dataEnd] !== CR || buf[dataEnd + 1] !== LF) {
    return failure(lineLength + bytes, new StarlingError('BAD_DATA_CHUNK', 'bad data chunk'), { resync: true })
  }
  const key = tokens.key(1)
  if (name !== 'set') return command(total, { type: 'refused_storage', name, key, noreply })
  return command(total, { type: 'set', key, flags, exptime, data: buf.subarray(dataStart, dataEnd), noreply })
}

/** A cas unique is 64 bits: up to 20 digits, beyond what a double holds exactly. */
function isU64(i: number): boolean {
  const len = tokens.length(i)
  if (len === 0 || len > 20) return false
  for (let k = tokens.starts[i]!; k < tokens.ends[i]!; k++) {
    const c = tokens.buf[k]!
    if (c < 0x30 || c > 0x39) return false
  }
  return len < 20 || tokens.text(i) <= '18446744073709551615'
}

function parseDelete(n: number, lineLength: number): ParseResult {
  // delete <key> [0] [noreply]; memcached refuses a non-zero time the same way.
  if (n < 2 || n > 4) return badFormat(lineLength)
  let noreply = false
  let last = n
  if (n >= 3 && tokens.is(n - 1, 'noreply')) {
    noreply = true
    last = n - 1
  }
  if (last === 3 && !tokens.is(2, '0')) return badFormat(lineLength)
  if (last > 3) return badFormat(lineLength)
  return command(lineLength, { type: 'delete', key: tokens.text(1), noreply })
}

function parseFlush(n: number, lineLength: number): ParseResult {
  if (n === 2) return command(lineLength, { type: 'flush', key: tokens.text(1), noreply: false })
  if (n === 3 && tokens.is(2, 'noreply')) return command(lineLength, { type: 'flush', key: tokens.text(1), noreply: true })
  return badFormat(lineLength)
}

function parseFlushAll(n: number, lineLength: number): ParseResult {
  let noreply = false
  let last = n
  if (n >= 2 && tokens.is(n - 1, 'noreply')) {
    noreply = true
    last = n - 1
  }
  if (last > 2) return badFormat(lineLength)
  let delaySeconds = 0
  if (last === 2) {
    delaySeconds = tokens.signed(1)
    if (Number.isNaN(delaySeconds)) return badFormat(lineLength)
  }
  return command(lineLength, { type: 'flush_all', delaySeconds, noreply })
}

function parseVerbosity(n: number, lineLength: number): ParseResult {
  const noreply = n === 3 && tokens.is(2, 'noreply')
  if (n !== 2 && !noreply) return badFormat(lineLength)
  const level = tokens.unsigned(1, 0, MAX_FLAGS)
  if (level < 0) return badFormat(lineLength)
  return command(lineLength, { type: 'verbosity', level, noreply })
}

// ---- results ----------------------------------------------------------------------------------

function badFormat(lineLength: number): ParseResult {
  return failure(lineLength, badCommandLine())
}

function lineTooLong(buffered: number): ParseResult {
  return failure(buffered, new StarlingError('BAD_COMMAND', 'line too long'), { close: true })
}
