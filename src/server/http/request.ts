/**
 * Small HTTP plumbing shared by the routes: replies, bounded body reading, query numbers and the
 * queue name in a path segment. Nothing here knows about queues.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { StarlingError } from '../errors.js'
import { parseSetKey } from '../protocol/keyOptions.js'

/** An error a route turns into a status line and a one-line text body. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
    this.name = 'HttpError'
  }
}

export function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return
  const body = Buffer.from(text + '\n')
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': body.length, ...headers })
  res.end(body)
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  if (res.headersSent || res.destroyed) return
  const body = Buffer.from(JSON.stringify(value))
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length, 'Cache-Control': 'no-store' })
  res.end(body)
}

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return
  res.writeHead(status, headers)
  res.end()
}

/** Map an engine error to a status: the caller's fault is 4xx, ours is 5xx. */
export function statusOf(err: StarlingError): number {
  switch (err.code) {
    case 'TOO_LARGE':
      return 413
    case 'QUEUE_FULL':
      return 507
    case 'OPEN_READ_PENDING':
      return 409
    case 'SHUTTING_DOWN':
      return 503
    case 'IO':
      return 500
    default:
      return err.clientSide ? 400 : 500
  }
}

/**
 * Read the whole body, refusing more than `maxBytes` (413) without buffering past it. The header
 * and whole-request timeouts of the server bound how long a slow client can hold this.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = req.headers['content-length']
    if (declared !== undefined && Number(declared) > maxBytes) {
      return reject(new HttpError(413, `body over the ${maxBytes}-byte item limit`, { Connection: 'close' }))
    }
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > maxBytes) {
        req.off('data', onData)
        chunks.length = 0
        // The rest of the body is not read: the connection closes after the reply.
        reject(new HttpError(413, `body over the ${maxBytes}-byte item limit`, { Connection: 'close' }))
        return
      }
      chunks.push(chunk)
    }
    req.on('data', onData)
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)))
    req.on('error', reject)
  })
}

/** An unsigned decimal integer from a query parameter or header, or `fallback` when absent. */
export function uintParam(name: string, value: string | null | undefined, max: number, fallback: number): number {
  if (value === null || value === undefined || value === '') return fallback
  if (!/^[0-9]{1,15}$/.test(value)) throw new HttpError(400, `${name} must be an unsigned integer`)
  const n = Number(value)
  if (n > max) throw new HttpError(400, `${name} must be at most ${max}`)
  return n
}

/** A signed decimal integer (the TTL follows memcached's exptime: negative = already expired). */
export function intParam(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback
  if (!/^-?[0-9]{1,12}$/.test(value)) throw new HttpError(400, `${name} must be an integer`)
  return Number(value)
}

/**
 * A queue name from a path segment: percent-decoded to bytes, then one char per byte (latin1),
 * as the memcached codecs read keys, so `/queues/caf%C3%A9` and `set café` name the same queue.
 * Then memcached's key rules, and no `/` (options are not names).
 */
export function queueNameFrom(segment: string, maxKeyLength: number): string {
  const bytes: number[] = []
  for (let i = 0; i < segment.length; i++) {
    const c = segment.charCodeAt(i)
    if (c === 0x25) {
      const hex = segment.slice(i + 1, i + 3)
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new HttpError(400, 'bad queue name: malformed percent-encoding')
      bytes.push(parseInt(hex, 16))
      i += 2
    } else if (c > 0xff) {
      throw new HttpError(400, 'bad queue name: raw non-latin1 character')
    } else {
      bytes.push(c)
    }
  }
  const name = Buffer.from(bytes).toString('latin1')
  try {
    return parseSetKey(name, maxKeyLength)
  } catch (err) {
    throw new HttpError(400, `bad queue name: ${(err as Error).message}`)
  }
}
