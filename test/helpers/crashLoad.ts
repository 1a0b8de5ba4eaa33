/**
 * The load the kill -9 tests run: producers pipelining sets and recording what was acknowledged,
 * and a drain that reads a queue empty after the restart.
 */
import { RawClient } from './textClient.js'

/** Every item of `queue`, in order, until the first miss. */
export async function drain(port: number, queue: string): Promise<string[]> {
  const c = await RawClient.connect(port)
  const out: string[] = []
  for (;;) {
    const v = await c.get(queue)
    if (v === null) break
    out.push(v)
  }
  c.close()
  return out
}

export interface ProducerOptions {
  queue: string
  /** Sets in flight per connection (pipelined), so several are in flight at the moment of a kill. */
  batch: number
  /** Filler after the `p<id>-<n>-` prefix of each value. */
  pad: string
  running: () => boolean
}

/**
 * Set values `p<id>-<n>-<pad>` until `running()` is false or the server dies; each value is pushed
 * to `acked` once its STORED arrived, so `acked` is exactly what the server acknowledged.
 */
export async function produce(port: number, id: number, acked: string[], o: ProducerOptions): Promise<void> {
  const c = await RawClient.connect(port)
  let i = 0
  try {
    while (o.running()) {
      const batch: string[] = []
      for (let k = 0; k < o.batch; k++) batch.push(`p${id}-${i++}-${o.pad}`)
      c.send(batch.map((v) => `set ${o.queue} 0 0 ${v.length}\r\n${v}\r\n`).join(''))
      for (const v of batch) {
        const reply = await c.line(10000)
        if (reply !== 'STORED') throw new Error(reply)
        acked.push(v)
      }
    }
  } catch {
    /* the server died under us: what was acknowledged is in `acked` */
  }
}
