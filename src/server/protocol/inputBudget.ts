/**
 * The server-wide budget for partially received request frames (`max_input_bytes`). A handler that
 * must wait for the rest of a declared frame — a text `set`/`ms` data block, a binary body — takes
 * the frame's full size from here first, and gives it back when the frame is parsed or the
 * connection closes. Without it, many connections each half-way through a large set would hold
 * memory without bound (each waiting frame's buffer is allocated at its declared size).
 *
 * When the budget has no room the frame is refused (SERVER_ERROR out of memory storing object /
 * binary ENOMEM) and its bytes are read and thrown away, as memcached does when it cannot allocate
 * an item. Frames over SMALL_FRAME_BYTES may use the budget only up to a reserve (an eighth of it)
 * kept for small frames, so a few large half-sent sets cannot refuse the small sets of everyone
 * else. Complete frames parsed straight from a socket chunk never take anything.
 */

/** Frames up to this size may use the whole budget; larger ones stop at the small-frame reserve. */
export const SMALL_FRAME_BYTES = 64 * 1024

export class InputBudget {
  /** Bytes held now by frames being received. */
  used = 0
  /** Frames refused for lack of room since start. */
  refusals = 0

  /** @param maxBytes the budget; 0 = unlimited. */
  constructor(readonly maxBytes: number) {}

  /** Bytes kept for frames of at most SMALL_FRAME_BYTES. */
  get smallFrameReserve(): number {
    return Math.floor(this.maxBytes / 8)
  }

  /**
   * Take `bytes` more for a frame of `frameBytes` in total. False (nothing taken, refusal counted)
   * when that would pass the budget — or, for a large frame, the budget less the small-frame reserve.
   */
  tryTake(bytes: number, frameBytes: number): boolean {
    if (this.maxBytes > 0) {
      const limit = frameBytes > SMALL_FRAME_BYTES ? this.maxBytes - this.smallFrameReserve : this.maxBytes
      if (this.used + bytes > limit) {
        this.refusals++
        return false
      }
    }
    this.used += bytes
    return true
  }

  give(bytes: number): void {
    this.used -= bytes
  }
}

/** For handlers built without a server (unit tests): never refuses. */
export function unlimitedInput(): InputBudget {
  return new InputBudget(0)
}
