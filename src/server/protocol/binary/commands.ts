/**
 * The memcached binary protocol's vocabulary: magic bytes, opcodes, response statuses, and the
 * typed requests the parser produces (memcached's protocol_binary.h, as a queue server uses it).
 */

export const REQUEST_MAGIC = 0x80
export const RESPONSE_MAGIC = 0x81
export const HEADER_LENGTH = 24

export const Opcode = {
  GET: 0x00,
  SET: 0x01,
  ADD: 0x02,
  REPLACE: 0x03,
  DELETE: 0x04,
  INCREMENT: 0x05,
  DECREMENT: 0x06,
  QUIT: 0x07,
  FLUSH: 0x08,
  GETQ: 0x09,
  NOOP: 0x0a,
  VERSION: 0x0b,
  GETK: 0x0c,
  GETKQ: 0x0d,
  APPEND: 0x0e,
  PREPEND: 0x0f,
  STAT: 0x10,
  SETQ: 0x11,
  ADDQ: 0x12,
  REPLACEQ: 0x13,
  DELETEQ: 0x14,
  INCREMENTQ: 0x15,
  DECREMENTQ: 0x16,
  QUITQ: 0x17,
  FLUSHQ: 0x18,
  APPENDQ: 0x19,
  PREPENDQ: 0x1a,
  VERBOSITY: 0x1b,
  TOUCH: 0x1c,
  GAT: 0x1d,
  GATQ: 0x1e,
  SASL_LIST_MECHS: 0x20,
  SASL_AUTH: 0x21,
  SASL_STEP: 0x22,
  GATK: 0x23,
  GATKQ: 0x24,
} as const

export const Status = {
  NO_ERROR: 0x0000,
  KEY_ENOENT: 0x0001,
  KEY_EEXISTS: 0x0002,
  E2BIG: 0x0003,
  EINVAL: 0x0004,
  NOT_STORED: 0x0005,
  DELTA_BADVAL: 0x0006,
  AUTH_ERROR: 0x0020,
  AUTH_CONTINUE: 0x0021,
  UNKNOWN_COMMAND: 0x0081,
  ENOMEM: 0x0082,
  NOT_SUPPORTED: 0x0083,
  INTERNAL_ERROR: 0x0084,
  BUSY: 0x0085,
  TEMPORARY_FAILURE: 0x0086,
} as const
export type StatusCode = (typeof Status)[keyof typeof Status]

/** memcached's texts for statuses sent without a more specific message (proto_bin.c). */
export const STATUS_TEXT: Readonly<Record<number, string>> = {
  [Status.KEY_ENOENT]: 'Not found',
  [Status.KEY_EEXISTS]: 'Data exists for key.',
  [Status.E2BIG]: 'Too large.',
  [Status.EINVAL]: 'Invalid arguments',
  [Status.NOT_STORED]: 'Not stored.',
  [Status.AUTH_ERROR]: 'Auth failure.',
  [Status.UNKNOWN_COMMAND]: 'Unknown command',
  [Status.ENOMEM]: 'Out of memory',
  [Status.NOT_SUPPORTED]: 'Not supported',
  [Status.INTERNAL_ERROR]: 'Internal error',
  [Status.BUSY]: 'Busy',
  [Status.TEMPORARY_FAILURE]: 'Temporary failure',
}

/** Fields every request carries into its response. */
export interface RequestFrame {
  opcode: number
  opaque: number
}

/** GET, GETQ, GETK, GETKQ: dequeue one item (key options apply). */
export interface GetRequest extends RequestFrame {
  kind: 'get'
  key: string
  /** Q variants: a miss sends nothing. */
  quiet: boolean
  /** K variants: the response carries the key. */
  withKey: boolean
}

/** SET, SETQ: enqueue. `value` is a view of the input buffer, valid only until the next parse. */
export interface SetRequest extends RequestFrame {
  kind: 'set'
  key: string
  quiet: boolean
  flags: number
  exptime: number
  /** Non-zero asks for a compare-and-swap, which a queue cannot honour. */
  cas: bigint
  value: Buffer
}

export interface DeleteRequest extends RequestFrame {
  kind: 'delete'
  key: string
  quiet: boolean
  cas: bigint
}

export interface FlushRequest extends RequestFrame {
  kind: 'flush'
  quiet: boolean
  /** memcached's delay; accepted and ignored (flush_all is a Starling no-op unless enabled). */
  delay: number
}

export interface QuitRequest extends RequestFrame {
  kind: 'quit'
  quiet: boolean
}

export interface SimpleRequest extends RequestFrame {
  kind: 'noop' | 'version' | 'saslListMechs'
}

export interface StatRequest extends RequestFrame {
  kind: 'stat'
  /** null = all statistics. */
  key: string | null
}

/** SASL_AUTH / SASL_STEP: key = mechanism, value = payload (a view, like SetRequest.value). */
export interface SaslRequest extends RequestFrame {
  kind: 'saslAuth' | 'saslStep'
  mechanism: string
  payload: Buffer
}

/**
 * A request answered from its header alone; its body is skipped without being buffered.
 * - notSupported: a memcached command with no meaning for a queue (ADD, APPEND, INCR, TOUCH...).
 * - unknown: an opcode we do not know.
 * - tooLarge: a SET whose value is over maxItemSize (its body within MAX_SKIPPED_BODY_BYTES).
 */
export interface SkippedRequest extends RequestFrame {
  kind: 'notSupported' | 'unknown' | 'tooLarge'
  /** Body bytes that follow the header and must be thrown away. */
  skip: number
}

/** A malformed frame: answer with `status` and close, the stream can no longer be trusted. */
export interface ProtocolViolation extends RequestFrame {
  kind: 'violation'
  status: StatusCode
  message: string
}

export type BinaryRequest =
  | GetRequest
  | SetRequest
  | DeleteRequest
  | FlushRequest
  | QuitRequest
  | SimpleRequest
  | StatRequest
  | SaslRequest
  | SkippedRequest
  | ProtocolViolation
