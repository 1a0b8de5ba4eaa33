/**
 * Client throughput: StarlingClient (text protocol, pipelined) on one connection and on a pool,
 * against memjs (binary protocol) on the same server in the same run.
 *
 *   node dist/bench/bin/clientThroughput.js [--servers host:port] [--count 20000] [--window 256] [--size 100]
 *
 * Each case sets `count` items then takes them back, keeping `window` requests in flight (window 1
 * = one request at a time, latency-bound). Items are checked on the way back.
 */
import { parseArgs } from 'node:util'
import memjs from 'memjs'
import { StarlingClient } from '../../src/index.js'

const { values } = parseArgs({
  options: {
    servers: { type: 'string', default: '127.0.0.1:22122' },
    count: { type: 'string', default: '20000' },
    window: { type: 'string', default: '256' },
    size: { type: 'string', default: '100' },
  },
})
const servers = values.servers!
const count = Number(values.count)
const windows = [1, Number(values.window)]
const payload = Buffer.alloc(Number(values.size), 'x')

interface Ops {
  set(queue: string, value: Buffer): Promise<unknown>
  get(queue: string): Promise<Buffer | undefined>
  close(): Promise<void>
}

/** Run `op(i)` for i < n with at most `window` in flight; ops per second. */
async function windowed(n: number, window: number, op: (i: number) => Promise<void>): Promise<number> {
  const started = process.hrtime.bigint()
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < n) await op(next++)
  }
  await Promise.all(Array.from({ length: Math.min(window, n) }, lane))
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  return Math.round(n / seconds)
}

async function measure(name: string, make: () => Ops): Promise<void> {
  for (const window of windows) {
    const ops = make()
    const queue = `bench_client_${process.pid}_${name.replace(/\W+/g, '_')}_${window}`
    const n = window === 1 ? Math.min(count, 5000) : count
    const sets = await windowed(n, window, async () => {
      await ops.set(queue, payload)
    })
    let got = 0
    const gets = await windowed(n, window, async () => {
      const v = await ops.get(queue)
      if (v !== undefined && v.length === payload.length) got++
    })
    if (got !== n) throw new Error(`${name}: ${got} of ${n} items came back`)
    console.log(`${name.padEnd(34)} window ${String(window).padStart(4)}  set ${String(sets).padStart(7)}/s  get ${String(gets).padStart(7)}/s`)
    await ops.close()
  }
}

function starling(options: ConstructorParameters<typeof StarlingClient>[1]): () => Ops {
  return () => {
    const c = new StarlingClient(servers, { serializer: 'raw', ...options })
    return {
      set: (q, v) => c.set(q, v),
      get: (q) => c.fetch<Buffer>(q),
      close: () => c.close(),
    }
  }
}

function memjsOps(): Ops {
  const c = memjs.Client.create(servers, { retries: 0, timeout: 5, logger: { log: () => {} } })
  return {
    set: (q, v) => c.set(q, v, {}),
    get: async (q) => (await c.get(q)).value ?? undefined,
    close: async () => c.close(),
  }
}

console.log(`${count} items of ${payload.length} bytes, ${servers}, node ${process.version}`)
await measure('StarlingClient, 1 connection', starling({ connectionsPerServer: 1 }))
await measure('StarlingClient, pool of 4', starling({ connectionsPerServer: 4 }))
await measure('memjs (binary), 1 connection', memjsOps)
