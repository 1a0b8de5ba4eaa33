/**
 * Parsing memcached's meta commands (doc/protocol.txt, "Meta Commands") for a queue server: they
 * share the text protocol's line framing, so the text parser hands the tokenized line here. What
 * each command does is in metaHandler.ts; this file knows nothing of the server above the codec.
 *
 *   mg <key> <flags>*          dequeue (Kestrel key options work: `mg jobs/t=500/open v`)
 *   ms <key> <datalen> <flags>* + data block    enqueue
 *   md <key> <flags>*          drop the queue
 *   mn                         MN (pipeline end marker)
 *   me <key>                   EN (debug is not supported)
 *
 * Flags we honour — mg: b c f k O q s t u v; ms: b F T M k O q; md: b k O q. Any other flag is
 * `CLIENT_ERROR bad flag`. `q` hides the nominal reply (EN for mg, HD for ms and md); errors are
 * never hidden. Return flags come back in request order; O and k are echoed on every reply.
 */
import { StarlingError } from '../../errors.js'
import type { ProtocolLimits } from '../limits.js'
import { badCommandLine, command, failure, type MetaReturnFlags, type ParseResult } from './commands.js'
import type { Tokens } from './tokens.js'

const CR = 0x0d
const LF = 0x0a

/** memcached: at most this many tokens on a meta line, opaque tokens at most 32 bytes. */
const MAX_META_TOKENS = 19
const MAX_OPAQUE_LENGTH = 32
const MAX_DECLARED_LENGTH = 2 ** 31 - 3

/** Flags each meta command accepts; everything else is a bad flag. */
const ALLOWED: Record<'mg' | 'ms' | 'md', string> = {
  mg: 'bcfkOqstuv',
  ms: 'bFTMkOq',
  md: 'bkOq',
}
/** Flags that return something, kept in request order. */
const RETURNED = 'kOfstc'
/** Flags that carry a token after the letter. */
const WITH_TOKEN = 'OFTM'

interface FlagScan {
  returns: MetaReturnFlags
  value: boolean
  clientFlags: number
  exptime: number
  refusedMode: boolean
  key: string
}

/** Called by the text parser with the line already tokenized (token 0 is the command name). */
export function parseMetaCommand(
  name: string,
  tokens: Tokens,
  buf: Buffer,
  start: number,
  end: number,
  lineLength: number,
  limits: ProtocolLimits,
): ParseResult {
  const n = tokens.count
  switch (name) {
    case 'mn':
      return command(lineLength, { type: 'mn' })
    case 'me':
      return n >= 2 ? command(lineLength, { type: 'me' }) : failure(lineLength, badCommandLine())
    case 'ma':
      return command(lineLength, { type: 'refused', name, noreply: false })
    case 'ms':
      return parseMetaSet(tokens, buf, start, end, lineLength, limits)
    default: {
      const kind = name as 'mg' | 'md'
      if (n < 2) return failure(lineLength, badCommandLine())
      if (n > MAX_META_TOKENS) return failure(lineLength, clientError('options flags too long'))
      const scan = scanFlags(kind, tokens, 2)
      if (scan instanceof StarlingError) return failure(lineLength, scan)
      if (kind === 'mg') return command(lineLength, { type: 'mg', key: scan.key, value: scan.value, returns: scan.returns })
      return command(lineLength, { type: 'md', key: scan.key, returns: scan.returns })
    }
  }
}

function parseMetaSet(
  tokens: Tokens,
  buf: Buffer,
  start: number,
  end: number,
  lineLength: number,
  limits: ProtocolLimits,
): ParseResult {
  const n = tokens.count
  if (n < 3) return failure(lineLength, badCommandLine())
  const bytes = tokens.unsigned(2, 0, MAX_DECLARED_LENGTH)
  if (bytes < 0) return failure(lineLength, badCommandLine())
  // From here the length is known: every refusal also skips the data block, staying in step.
  if (n > MAX_META_TOKENS) return failure(lineLength, clientError('options flags too long'), { discard: bytes + 2 })
  const scan = scanFlags('ms', tokens, 3)
  if (scan instanceof StarlingError) return failure(lineLength, scan, { discard: bytes + 2 })
  if (bytes > limits.maxItemSize) {
    return failure(lineLength, new StarlingError('TOO_LARGE', 'object too large for cache'), { discard: bytes + 2 })
  }
  const total = lineLength + bytes + 2
  // ms has no noreply: `q` hides HD only, errors are always sent.
  if (end - start < total) return { kind: 'incomplete', expectBytes: total, headerBytes: lineLength, noreply: false }
  const dataStart = start + lineLength
  const dataEnd = dataStart + bytes
  if (buf[dataEnd] !== CR || buf[dataEnd + 1] !== LF) {
    return failure(lineLength + bytes, new StarlingError('BAD_DATA_CHUNK', 'bad data chunk'), { resync: true })
  }
  return command(total, {
    type: 'ms',
    key: scan.key,
    flags: scan.clientFlags,
    exptime: scan.exptime,
    refusedMode: scan.refusedMode,
    data: buf.subarray(dataStart, dataEnd),
    returns: scan.returns,
  })
}

function scanFlags(kind: 'mg' | 'ms' | 'md', tokens: Tokens, first: number): FlagScan | StarlingError {
  const allowed = ALLOWED[kind]
  const scan: FlagScan = {
    returns: { order: '', opaque: '', keyToken: tokens.text(1), base64: false, quiet: false },
    value: false,
    clientFlags: 0,
    exptime: 0,
    refusedMode: false,
    key: '',
  }
  let seen = ''
  for (let i = first; i < tokens.count; i++) {
    const letter = String.fromCharCode(tokens.firstByte(i))
    if (!allowed.includes(letter)) return clientError('bad flag')
    if (!WITH_TOKEN.includes(letter) && tokens.length(i) !== 1) return clientError('bad flag')
    if (seen.includes(letter)) return clientError('duplicate flag')
    seen += letter
    if (RETURNED.includes(letter)) scan.returns.order += letter
    switch (letter) {
      case 'b':
        scan.returns.base64 = true
        break
      case 'q':
        scan.returns.quiet = true
        break
      case 'v':
        scan.value = true
        break
      case 'O':
        if (tokens.length(i) - 1 > MAX_OPAQUE_LENGTH) return clientError('opaque token too long')
        scan.returns.opaque = tokens.valueText(i)
        break
      case 'F': {
        const flags = tokens.unsigned(i, 1, 0xffffffff)
        if (flags < 0) return clientError('bad token in command line format')
        scan.clientFlags = flags
        break
      }
      case 'T': {
        const ttl = tokens.signed(i, 1)
        if (Number.isNaN(ttl)) return clientError('bad token in command line format')
        scan.exptime = ttl
        break
      }
      case 'M': {
        if (tokens.length(i) !== 2) return clientError('incorrect length for M token')
        const mode = String.fromCharCode(tokens.buf[tokens.starts[i]! + 1]!).toUpperCase()
        if (!'SEAPR'.includes(mode)) return clientError('invalid mode for ms M token')
        // add/append/prepend/replace have no meaning for a queue: answered NS.
        scan.refusedMode = mode !== 'S'
        break
      }
      // c f k s t u: nothing to do until the reply.
    }
  }
  if (scan.returns.base64) {
    const decoded = decodeBase64Key(scan.returns.keyToken)
    if (decoded === null) return clientError('error decoding key')
    scan.key = decoded
  } else {
    scan.key = scan.returns.keyToken
  }
  return scan
}

/** Strict base64 (memcached's `b` flag); the decoded bytes as a latin1 key, or null. */
function decodeBase64Key(text: string): string | null {
  if (text.length === 0 || text.length % 4 !== 0) return null
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    const ok =
      (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2f
    if (ok) continue
    // '=' only as padding at the very end.
    if (c === 0x3d && i >= text.length - 2 && (i === text.length - 1 || text.charCodeAt(text.length - 1) === 0x3d)) continue
    return null
  }
  const bytes = Buffer.from(text, 'base64')
  return bytes.length === 0 ? null : bytes.toString('latin1')
}

function clientError(message: string): StarlingError {
  return new StarlingError('BAD_COMMAND', message)
}
