/**
 * collectGarbage (engine/reclaim.ts): one full GC on request, without --expose-gc on the command
 * line, so dead ArrayBuffers (replay's read chunks) are freed at once; contexts made afterwards
 * get no `gc`.
 */
import t from 'tap'
import { runInNewContext } from 'node:vm'
import { collectGarbage } from '../../src/server/engine/reclaim.js'

const MiB = 1024 * 1024

/** Make 8 chunks of 4 MiB and drop them; whether they were all made. */
function allocateAndDrop(): boolean {
  const chunks: Buffer[] = []
  for (let i = 0; i < 8; i++) chunks.push(Buffer.allocUnsafeSlow(4 * MiB).fill(i))
  return chunks.every((c, i) => c[0] === i)
}

t.test('dead 4 MiB chunks are freed by one call', async (t) => {
  t.ok(collectGarbage(), 'a GC function is available')
  const before = process.memoryUsage().arrayBuffers
  t.ok(allocateAndDrop(), '8 chunks of 4 MiB made')
  const held = process.memoryUsage().arrayBuffers
  t.ok(held - before >= 30 * MiB, `32 MiB allocated (+${((held - before) / MiB).toFixed(1)} MiB)`)
  t.ok(collectGarbage())
  const after = process.memoryUsage().arrayBuffers
  t.ok(after - before < 4 * MiB, `freed: ${((after - before) / MiB).toFixed(1)} MiB above the start`)
  t.equal(runInNewContext('typeof gc'), 'undefined', 'a context made later has no gc')
})
