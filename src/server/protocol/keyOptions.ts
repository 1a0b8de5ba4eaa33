/**
 * Kestrel-style key options: `queue/t=500/open`, `queue/close/open`, `queue/abort`, `queue/peek`.
 * Shared by every codec (text, meta, binary), so options mean the same thing on every protocol.
 * Keys arrive as latin1 strings (one char per byte), so a queue name round-trips byte for byte.
 */
import { PLAIN_READ, type QueueReadOptions } from '../engine/requests.js'
import { StarlingError } from '../errors.js'

export interface ParsedKey {
  queue: string
  options: QueueReadOptions
}

/** Longest wait a client may ask for; longer values are clamped (Kestrel clamps too). */
export const MAX_WAIT_MS = 24 * 3600 * 1000

/** Memcached key rules: 1..maxLength bytes, no spaces or control characters. */
export function validateKey(key: string, maxLength: number): void {
  if (key.length === 0) throw new StarlingError('BAD_KEY', 'empty key')
  if (key.length > maxLength) throw new StarlingError('BAD_KEY', 'key too long')
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i)
    if (c <= 0x20 || c === 0x7f) throw new StarlingError('BAD_KEY', 'bad character in key')
  }
}

/**
 * Split `name/opt/opt` into the queue name and typed options.
 * Throws BAD_OPTIONS for unknown, repeated or contradictory options.
 */
export function parseQueueKey(key: string, maxLength: number): ParsedKey {
  validateKey(key, maxLength)
  const slash = key.indexOf('/')
  if (slash < 0) return { queue: key, options: PLAIN_READ }
  const queue = key.slice(0, slash)
  if (queue.length === 0) throw new StarlingError('BAD_KEY', 'empty queue name')
  const options: QueueReadOptions = { timeoutMs: 0, open: false, close: false, abort: false, peek: false }
  const seen = new Set<string>()
  for (const part of key.slice(slash + 1).split('/')) {
    const name = part.startsWith('t=') ? 't' : part
    if (seen.has(name)) throw new StarlingError('BAD_OPTIONS', `repeated option ${name}`)
    seen.add(name)
    switch (name) {
      case 'open':
      case 'close':
      case 'abort':
      case 'peek':
        options[name] = true
        break
      case 't': {
        const digits = part.slice(2)
        if (!/^[0-9]{1,10}$/.test(digits)) throw new StarlingError('BAD_OPTIONS', `bad timeout ${part}`)
        options.timeoutMs = Math.min(Number(digits), MAX_WAIT_MS)
        break
      }
      default:
        throw new StarlingError('BAD_OPTIONS', `unknown option ${part === '' ? '(empty)' : part}`)
    }
  }
  if (options.peek && (options.open || options.close || options.abort)) {
    throw new StarlingError('BAD_OPTIONS', 'peek cannot be combined with open, close or abort')
  }
  if (options.abort && (options.open || options.close)) {
    throw new StarlingError('BAD_OPTIONS', 'abort cannot be combined with open or close')
  }
  return { queue, options }
}

/** For storage commands: a queue name with options is refused. */
export function parseSetKey(key: string, maxLength: number): string {
  validateKey(key, maxLength)
  if (key.includes('/')) throw new StarlingError('BAD_OPTIONS', 'options are not allowed on set')
  return key
}

/** A queue name for commands that take no Kestrel options (delete, flush, md, binary DELETE). */
export function plainQueueName(key: string, maxLength: number, commandName: string): string {
  validateKey(key, maxLength)
  if (key.includes('/')) throw new StarlingError('BAD_OPTIONS', `options are not allowed on ${commandName}`)
  return key
}
