/**
 * Starling journal records, built byte by byte from the format (lib/starling/persistent_queue.rb
 * + handler.rb): push = 0x00, u32 LE size, value; the value is u32 LE expiry + data. pop = 0x01.
 */
export function starlingPush(data: string | Buffer, expiry: number): Buffer {
  const d = Buffer.isBuffer(data) ? data : Buffer.from(data)
  const rec = Buffer.alloc(1 + 4 + 4 + d.length)
  rec[0] = 0x00
  rec.writeUInt32LE(4 + d.length, 1)
  rec.writeUInt32LE(expiry, 5)
  d.copy(rec, 9)
  return rec
}

export function starlingPop(): Buffer {
  return Buffer.from([0x01])
}
