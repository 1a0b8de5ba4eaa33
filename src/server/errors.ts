/**
 * Typed errors. Every error that can reach a client carries a code; the protocol layer maps codes
 * to replies (CLIENT_ERROR / SERVER_ERROR / binary status) — nothing below it knows about replies.
 */
export type ErrorCode =
  | 'BAD_KEY' // key too long, control characters, empty
  | 'BAD_OPTIONS' // malformed or unknown key options (/t=, /open, ...)
  | 'BAD_COMMAND' // malformed command line or arguments
  | 'BAD_DATA_CHUNK' // data block length disagrees with header
  | 'TOO_LARGE' // item over max_item_size
  | 'QUEUE_FULL' // queue over max_items / max_size
  | 'OUT_OF_MEMORY' // no room in the input budget (max_input_bytes) for a frame being received
  | 'OPEN_READ_PENDING' // a second /open without /close on the same queue and connection
  | 'NOT_SUPPORTED' // add/replace/append/... on a queue server
  | 'AUTH_REQUIRED'
  | 'AUTH_FAILED'
  | 'IO' // journal write/fsync failure (disk full, EIO ...)
  | 'SHUTTING_DOWN'
  | 'TOO_MANY_QUEUES' // a new queue beyond max_queues

/** Which reply family the code belongs to: caller's fault (client) or ours (server). */
const CLIENT_SIDE = new Set<ErrorCode>([
  'BAD_KEY',
  'BAD_OPTIONS',
  'BAD_COMMAND',
  'BAD_DATA_CHUNK',
  'OPEN_READ_PENDING',
  'NOT_SUPPORTED',
  'AUTH_REQUIRED',
  'AUTH_FAILED',
])

export class StarlingError extends Error {
  readonly code: ErrorCode
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = 'StarlingError'
  }
  get clientSide(): boolean {
    return CLIENT_SIDE.has(this.code)
  }
}

/** Configuration problems: reported as one line and exit status 1 by the CLI. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}
