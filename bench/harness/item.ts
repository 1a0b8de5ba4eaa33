/**
 * Benchmark items: every value carries who made it, its sequence number, when it was sent, and a
 * CRC-32 of everything else, so a consumer can tell lost, duplicated, corrupt and out-of-order
 * deliveries apart. The header is 16 bytes, so even the "tiny" 16-byte items are fully checked.
 *
 *   0  u16  producer id
 *   2  u32  sequence number (per producer, from 0)
 *   6  u48  send time, microseconds of the monotonic clock (comparable across threads/processes)
 *  12  u32  CRC-32 of bytes [0,12) and [16,end)
 *  16  ...  filler: a per-run random pattern, rotated by the sequence number
 */
import { randomBytes } from 'node:crypto'
import { crc32 } from 'node:zlib'

export const HEADER_BYTES = 16
export const MAX_PRODUCERS = 0xffff

/** Microseconds on the monotonic clock (CLOCK_MONOTONIC: the same clock in every thread and process). */
export function nowMicros(): number {
  return Number(process.hrtime.bigint() / 1000n)
}

export class ItemFactory {
  private readonly pattern: Buffer

  constructor(readonly size: number) {
    if (size < HEADER_BYTES) throw new Error(`item size ${size} is below the ${HEADER_BYTES}-byte header`)
    // Twice the filler length so any rotation is one contiguous copy.
    const filler = randomBytes(Math.max(1, size - HEADER_BYTES))
    this.pattern = Buffer.concat([filler, filler])
  }

  make(producerId: number, seq: number): Buffer {
    const item = Buffer.allocUnsafe(this.size)
    item.writeUInt16BE(producerId, 0)
    item.writeUInt32BE(seq >>> 0, 2)
    item.writeUIntBE(nowMicros() % 2 ** 48, 6, 6)
    const fillerLength = this.size - HEADER_BYTES
    if (fillerLength > 0) {
      const start = (seq * 7919) % fillerLength
      this.pattern.copy(item, HEADER_BYTES, start, start + fillerLength)
    }
    item.writeUInt32BE(checksum(item), 12)
    return item
  }
}

function checksum(item: Buffer): number {
  return crc32(item.subarray(HEADER_BYTES), crc32(item.subarray(0, 12)))
}

export interface DecodedItem {
  producerId: number
  seq: number
  sentMicros: number
}

/** The item's header, or null if it is too short or its checksum does not match. */
export function decodeItem(value: Buffer): DecodedItem | null {
  if (value.length < HEADER_BYTES) return null
  if (value.readUInt32BE(12) !== checksum(value)) return null
  return { producerId: value.readUInt16BE(0), seq: value.readUInt32BE(2), sentMicros: value.readUIntBE(6, 6) }
}

/** Micros elapsed since a 48-bit send stamp (wrap-safe). */
export function elapsedMicros(sentMicros: number): number {
  const now = nowMicros() % 2 ** 48
  return now >= sentMicros ? now - sentMicros : now + 2 ** 48 - sentMicros
}
