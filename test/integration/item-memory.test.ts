/**
 * Memory per item (issue 13): the budget bounds what items really cost, payload plus the per-item
 * overhead, so a queue of many small items stays within a small RSS while filling, full, after a
 * restart and while draining. A behaviour test with a wide margin: with an object per item
 * (~270 bytes each at 16 B) 150k items held ~40 MiB more; packed, they cost what the budget says.
 */
import { readFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import t from 'tap'
import { COMPACT_HEADER_BYTES, ITEM_SLACK_BYTES } from '../../src/server/engine/itemStore.js'
import { serverFor, startServer, type RunningServer } from '../helpers/server.js'

const COUNT = 150_000
const SIZE = 16
const BUDGET = 4 * 1024 * 1024
/**
 * RSS growth allowed over the idle server while filling, full and restarted: the 4 MiB budget,
 * write batches and heap, with room to spare (measured: ~10-15 MiB; with an object per item: ~40).
 */
const MARGIN_MIB = 30
/**
 * While draining, replies and their REMOVE callbacks (pipelined, thousands in flight) are
 * promoted to old space and wait for a full GC: the heap grows by ~20-50 MiB of garbage.
 */
const DRAIN_MARGIN_MIB = 100
// as bin/starling runs it
const env = { NODE_OPTIONS: '--max-semi-space-size=4', MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '1048576' }

function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024
}

/** One pipelined connection: send text, wait for `count` occurrences of `reply` at line starts. */
class Pipe {
  private text = ''
  private want: { count: number; re: RegExp; resolve: (s: string) => void } | undefined
  private constructor(private readonly sock: Socket) {
    sock.setEncoding('latin1')
    sock.on('data', (d: string) => {
      this.text += d
      this.check()
    })
  }

  static open(port: number): Promise<Pipe> {
    return new Promise((resolve, reject) => {
      const sock = connect(port, '127.0.0.1', () => resolve(new Pipe(sock)))
      sock.once('error', reject)
    })
  }

  private check(): void {
    const w = this.want
    if (!w) return
    const n = this.text.match(w.re)?.length ?? 0
    if (n < w.count) return
    this.want = undefined
    const s = this.text
    this.text = ''
    w.resolve(s)
  }

  run(cmds: string, count: number, re: RegExp): Promise<string> {
    const p = new Promise<string>((resolve) => (this.want = { count, re, resolve }))
    this.sock.write(cmds, 'latin1')
    this.check()
    return p
  }

  close(): void {
    this.sock.destroy()
  }
}

const value = (i: number): string => String(i).padStart(SIZE, '0')

async function stat(p: Pipe, name: string): Promise<number> {
  const s = await p.run('stats\r\n', 1, /^END\r\n/gm)
  const m = new RegExp(`^STAT queue_m_${name} (\\d+)`, 'm').exec(s)
  return m ? Number(m[1]) : NaN
}

t.test(`${COUNT} x ${SIZE} B with max_memory_size 4MB: RSS within ${MARGIN_MIB} MiB of idle when full and restarted`, async (t) => {
  const config = { max_memory_size: '4MB' }
  const first = await serverFor(t, { config, env })
  let p = await Pipe.open(first.port)
  await p.run('version\r\n', 1, /^VERSION/gm)
  const idle = rssMiB(first.proc.pid!)
  const bound = idle + MARGIN_MIB
  let peak = 0
  for (let i = 0; i < COUNT; i += 5000) {
    let cmds = ''
    for (let j = i; j < i + 5000; j++) cmds += `set m 0 0 ${SIZE}\r\n${value(j)}\r\n`
    await p.run(cmds, 5000, /^STORED\r\n/gm)
    peak = Math.max(peak, rssMiB(first.proc.pid!))
  }
  t.equal(await stat(p, 'items'), COUNT)
  const memBytes = await stat(p, 'mem_bytes')
  const memCount = await stat(p, 'mem_count')
  t.ok(memBytes <= BUDGET, `mem_bytes ${memBytes} within the budget`)
  t.equal(memBytes, memCount * (SIZE + COMPACT_HEADER_BYTES + ITEM_SLACK_BYTES), 'mem_bytes charges payload + header + slack per item')
  t.ok(memCount < COUNT, `${memCount} items in memory, the rest read back from disk`)
  t.ok(peak < bound, `filling: RSS peak ${peak.toFixed(0)} MiB (idle ${idle.toFixed(0)})`)
  p.close()
  await first.stop()

  // Restart on the same spool: the queue reads in up to its budget, packed.
  let second: RunningServer | undefined = await startServer({ config, env, spool: first.spool })
  t.teardown(async () => {
    if (second && second.proc.exitCode === null) await second.stop()
  })
  p = await Pipe.open(second.port)
  t.equal(await stat(p, 'items'), COUNT, 'every item back after the restart')
  const restarted = rssMiB(second.proc.pid!)
  t.ok(restarted < bound, `restarted: RSS ${restarted.toFixed(0)} MiB`)

  // Drain, in order, watching RSS.
  peak = 0
  let next = 0
  let bad = 0
  const gets = 'get m\r\n'.repeat(2000)
  while (next < COUNT) {
    const s = await p.run(gets, 2000, /^END\r\n/gm)
    for (const m of s.matchAll(/^VALUE m 0 \d+\r\n(\d+)\r\n/gm)) {
      if (Number(m[1]) !== next) bad++
      next = Number(m[1]) + 1
    }
    peak = Math.max(peak, rssMiB(second.proc.pid!))
  }
  t.equal(next, COUNT, 'drained every item')
  t.equal(bad, 0, 'in FIFO order')
  t.ok(peak < idle + DRAIN_MARGIN_MIB, `draining: RSS peak ${peak.toFixed(0)} MiB`)
  t.equal(await stat(p, 'mem_bytes'), 0, 'nothing charged once empty')
  p.close()
  await second.stop()
  second = undefined
})
