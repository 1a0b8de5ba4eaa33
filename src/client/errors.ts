/**
 * Errors the client raises. Every one carries a `code` so callers can branch without parsing
 * messages:
 *
 * - `ConnectionError` — the server could not be reached, or the connection dropped before the
 *   reply arrived. `sent` says whether the command may have reached the server (a set that failed
 *   with `sent: false` was certainly not stored).
 * - `ServerError` — the server answered `ERROR`, `CLIENT_ERROR <reason>` or `SERVER_ERROR <reason>`.
 * - `TimeoutError` — no reply within the operation timeout; the connection is closed, because a
 *   late reply would put it out of step.
 * - `StarlingClientError` (base) — bad arguments (`BAD_KEY`, `BAD_VALUE`), use after `close()`
 *   (`CLOSED`), a reliable read settled twice (`ALREADY_SETTLED`), an undecodable value (`DECODE`).
 */
export type ClientErrorCode =
  | 'BAD_KEY'
  | 'BAD_VALUE'
  | 'BAD_OPTION'
  | 'CLOSED'
  | 'ALREADY_SETTLED'
  | 'DECODE'
  | 'ECONNECTION'
  | 'ESERVER'
  | 'ETIMEDOUT'
  | 'PROTOCOL'

export class StarlingClientError extends Error {
  readonly code: ClientErrorCode
  constructor(code: ClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = 'StarlingClientError'
  }
}

export class ConnectionError extends StarlingClientError {
  /** "host:port" of the server, when one is concerned. */
  readonly server: string | undefined
  /** False when the command certainly never reached the server (safe to send elsewhere). */
  readonly sent: boolean
  constructor(message: string, options: { server?: string; sent?: boolean; cause?: unknown } = {}) {
    super('ECONNECTION', message, { cause: options.cause })
    this.name = 'ConnectionError'
    this.server = options.server
    this.sent = options.sent ?? true
  }
}

export class ServerError extends StarlingClientError {
  /** `ERROR`, `CLIENT_ERROR` or `SERVER_ERROR`. */
  readonly kind: 'ERROR' | 'CLIENT_ERROR' | 'SERVER_ERROR'
  /** The reason text after the kind, e.g. `queue full`. */
  readonly reason: string
  readonly server: string | undefined
  constructor(line: string, server?: string) {
    const space = line.indexOf(' ')
    const kind = (space < 0 ? line : line.slice(0, space)) as ServerError['kind']
    const reason = space < 0 ? '' : line.slice(space + 1)
    super('ESERVER', server ? `${server}: ${line}` : line)
    this.name = 'ServerError'
    this.kind = kind
    this.reason = reason
    this.server = server
  }
}

export class TimeoutError extends StarlingClientError {
  readonly server: string | undefined
  readonly timeoutMs: number
  constructor(message: string, options: { server?: string; timeoutMs: number }) {
    super('ETIMEDOUT', message)
    this.name = 'TimeoutError'
    this.server = options.server
    this.timeoutMs = options.timeoutMs
  }
}

/** The reason an AbortSignal carries, or a standard AbortError when it carries none. */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError')
}

export function isAbortError(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError'
}
