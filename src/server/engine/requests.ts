/**
 * The engine's request types: what a caller may ask of a queue read. The protocol layer builds
 * them from wire syntax (Kestrel key options such as `q/t=500/open`, see protocol/keyOptions.ts);
 * the engine owns them, so nothing below the protocol layer imports from it.
 */

/** How to read from a queue: wait, reliable read (open/close/abort), or peek. */
export interface QueueReadOptions {
  /** Wait up to this long for an item; 0 = do not wait. */
  timeoutMs: number
  /** Tentatively remove the head (reliable read). */
  open: boolean
  /** Confirm this connection's open read on the queue. */
  close: boolean
  /** Put this connection's open read back at the head. */
  abort: boolean
  /** Return the head without removing it. */
  peek: boolean
}

/**
 * How a plain get's reply is laid out around the item's payload, so that the payload is copied out
 * of the item store once, straight into the reply (no Buffer of its own per item): the item then
 * comes with `framed`, the reply buffer its `data` is a view of, to be completed by the caller.
 */
export interface ReplyFrame {
  /** Bytes of reply before the payload of an item with these flags and payload length. */
  headBytes(flags: number, length: number): number
  /** Bytes of reply after the payload. */
  readonly tailBytes: number
}

/**
 * Whether `data` lies in the reply buffer `framed` a ReplyFrame laid out for it: `headBytes` of
 * reply before it and `tailBytes` after. The protocol then writes the rest around the payload; an
 * item that came another way (returned by an abort, handed to a waiter) needs a reply of its own.
 */
export function payloadInPlace(framed: Buffer | null | undefined, data: Buffer, headBytes: number, tailBytes: number): framed is Buffer {
  return (
    framed != null &&
    framed.buffer === data.buffer &&
    data.byteOffset - framed.byteOffset === headBytes &&
    framed.length === headBytes + data.length + tailBytes
  )
}

/** A plain read: take the head now, no waiting. */
export const PLAIN_READ: Readonly<QueueReadOptions> = Object.freeze({
  timeoutMs: 0,
  open: false,
  close: false,
  abort: false,
  peek: false,
})
