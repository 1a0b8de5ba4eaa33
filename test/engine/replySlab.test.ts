import t from 'tap'
import { replyBuffer } from '../../src/server/engine/replySlab.js'

t.test('reply buffers: the size asked, never sharing a byte with another one alive, large ones apart', async (t) => {
  const live: Buffer[] = []
  const sizes = [1, 7, 8, 1070, 4096, 8192, 8193, 65536, 3, 1070, 1070, 1070, 1070, 1070, 1070, 1070, 1070, 1070]
  for (let round = 0; round < 20; round++) {
    for (const [i, size] of sizes.entries()) {
      const b = replyBuffer(size)
      t.equal(b.length, size)
      b.fill((round * 31 + i) & 0xff)
      live.push(b)
    }
  }
  // each kept its own bytes: no later buffer was cut over an earlier one
  let k = 0
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < sizes.length; i++) {
      const b = live[k++]!
      const want = (round * 31 + i) & 0xff
      if (!b.every((x) => x === want)) t.fail(`round ${round} buffer ${i} (${b.length} B) overwritten`)
    }
  }
  // small ones are cut from a slab (shared ArrayBuffer, 8-byte aligned); large ones are not
  const a = replyBuffer(100)
  const b = replyBuffer(100)
  t.equal(a.buffer, b.buffer, 'two small replies share a slab')
  t.equal(b.byteOffset - a.byteOffset, 104, 'aligned to 8 bytes')
  t.not(replyBuffer(9000).buffer, replyBuffer(9000).buffer, 'a large reply has a buffer of its own')
})
