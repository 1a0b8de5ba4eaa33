/**
 * Typed commands of the memcached text protocol and its meta commands, as the parser produces them.
 * Keys are latin1 strings (one char per byte) exactly as the client sent them; validating them as
 * queue names (and their Kestrel options) is the handler's job, through keyOptions.
 */
import { StarlingError } from '../../errors.js'

/** `set <key> <flags> <exptime> <bytes> [noreply]` with its data block. */
export interface SetCommand {
  type: 'set'
  key: string
  flags: number
  exptime: number
  /** A view of the input buffer: valid only until the handler returns. */
  data: Buffer
  noreply: boolean
}

/** `add` / `replace` / `append` / `prepend` / `cas`: parsed in full (data block read), then refused. */
export interface RefusedStorageCommand {
  type: 'refused_storage'
  name: string
  key: string
  noreply: boolean
}

/** `get` / `gets` with one or more keys. */
export interface GetCommand {
  type: 'get'
  keys: string[]
  /** `gets`: include the cas id in each VALUE line. */
  withCas: boolean
}

export interface DeleteCommand {
  type: 'delete'
  key: string
  noreply: boolean
}

export interface FlushCommand {
  type: 'flush'
  key: string
  noreply: boolean
}

export interface FlushAllCommand {
  type: 'flush_all'
  delaySeconds: number
  noreply: boolean
}

export interface StatsCommand {
  type: 'stats'
  /** `stats <queue>`; null for plain `stats`. */
  queue: string | null
}

export interface VersionCommand {
  type: 'version'
}

export interface VerbosityCommand {
  type: 'verbosity'
  level: number
  noreply: boolean
}

export interface QuitCommand {
  type: 'quit'
}

export interface ShutdownCommand {
  type: 'shutdown'
}

/** `incr` / `decr` / `touch` / `gat` / `gats` / `ma`: memcached commands a queue cannot honour. */
export interface RefusedCommand {
  type: 'refused'
  name: string
  noreply: boolean
}

/** A command name we do not know: `ERROR`. */
export interface UnknownCommand {
  type: 'unknown'
}

// ---- meta commands -------------------------------------------------------------------------

/**
 * The flags a meta command carries that shape its reply. `returnFlags` keeps the request order,
 * since memcached answers flags in the order they were asked for.
 */
export interface MetaReturnFlags {
  /** Flag letters to answer, in request order: k, O, f, s, t, c, b. */
  order: string
  /** The `O` token as sent (without the `O`); '' when absent. */
  opaque: string
  /** The key token exactly as sent (base64 text when `b` is set). */
  keyToken: string
  /** `b`: the key token is base64; the decoded bytes are the queue name. */
  base64: boolean
  /** `q`: suppress the nominal reply (EN for mg, HD for ms/md). */
  quiet: boolean
}

/** `mg <key> <flags>*`: dequeue (the key may carry Kestrel options). */
export interface MetaGetCommand {
  type: 'mg'
  /** Decoded key (latin1), options included. */
  key: string
  /** `v`: return the value in a data block. */
  value: boolean
  returns: MetaReturnFlags
}

/** `ms <key> <datalen> <flags>*` with its data block: enqueue. */
export interface MetaSetCommand {
  type: 'ms'
  key: string
  flags: number
  exptime: number
  /** `M<mode>` other than set: answered NS (a queue only appends). */
  refusedMode: boolean
  /** A view of the input buffer: valid only until the handler returns. */
  data: Buffer
  returns: MetaReturnFlags
}

/** `md <key> <flags>*`: drop the queue. */
export interface MetaDeleteCommand {
  type: 'md'
  key: string
  returns: MetaReturnFlags
}

/** `mn`: answered MN, the pipeline end marker. */
export interface MetaNoopCommand {
  type: 'mn'
}

/** `me <key>`: debug, unsupported: answered EN. */
export interface MetaDebugCommand {
  type: 'me'
}

export type MetaCommand = MetaGetCommand | MetaSetCommand | MetaDeleteCommand | MetaNoopCommand | MetaDebugCommand

export type TextCommand =
  | SetCommand
  | RefusedStorageCommand
  | GetCommand
  | DeleteCommand
  | FlushCommand
  | FlushAllCommand
  | StatsCommand
  | VersionCommand
  | VerbosityCommand
  | QuitCommand
  | ShutdownCommand
  | RefusedCommand
  | UnknownCommand
  | MetaCommand

// ---- parse results ----------------------------------------------------------------------------

/** More input is needed. `expectBytes` is the full frame size from the start, when known (0 if not). */
export interface Incomplete {
  kind: 'incomplete'
  expectBytes: number
  /**
   * Set with expectBytes (a data block is awaited): the command line's length, and its noreply —
   * what the handler needs to refuse the frame at once and discard the block (input budget).
   */
  headerBytes?: number
  noreply?: boolean
}

export interface Parsed {
  kind: 'command'
  /** Bytes of input the command used (line and data block). */
  consumed: number
  command: TextCommand
}

/** Input that cannot be a command. The handler answers `error` and applies the framing fields. */
export interface ParseFailure {
  kind: 'error'
  consumed: number
  error: StarlingError
  /** Bytes to skip after `consumed` without buffering them (a refused data block). */
  discard: number
  /** Skip input through the next newline before parsing again (bad data chunk). */
  resync: boolean
  /** Close the connection after the error (line too long). */
  close: boolean
  /** The command asked for noreply: semantic errors are suppressed, framing errors are not. */
  noreply: boolean
}

export type ParseResult = Incomplete | Parsed | ParseFailure

export function command(consumed: number, cmd: TextCommand): Parsed {
  return { kind: 'command', consumed, command: cmd }
}

export function failure(
  consumed: number,
  error: StarlingError,
  framing: { discard?: number; resync?: boolean; close?: boolean; noreply?: boolean } = {},
): ParseFailure {
  return {
    kind: 'error',
    consumed,
    error,
    discard: framing.discard ?? 0,
    resync: framing.resync ?? false,
    close: framing.close ?? false,
    noreply: framing.noreply ?? false,
  }
}

export function badCommandLine(): StarlingError {
  return new StarlingError('BAD_COMMAND', 'bad command line format')
}
