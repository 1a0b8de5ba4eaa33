/**
 * Shared by the differential pipeline tests (issue 16): run one script on two fresh servers — all
 * of it in one socket write on one, one command per round trip on the other — and hand back both
 * transcripts. Every command is followed by a marker (text `mn`, binary NOOP) in both runs, so the
 * round-trip runner knows when a command's reply (or its silence: noreply, quiet) is complete; the
 * markers are in the same places in both runs, so byte counts in stats agree too.
 */
import { connect, type Socket } from 'node:net'
import { startServer, removeDir, type RunningServer } from '../helpers/server.js'
import fc from 'fast-check'

/** How many scripts to run: a few under `npm test`, many under `npm run fuzz`. */
export const FUZZ = process.env['STARLING_FUZZ'] === '1'

export interface Transcript {
  bytes: Buffer
}

type Pair = [RunningServer, RunningServer]
/** The next pair, started while the current script runs (starting processes is most of the time). */
let spare: Promise<Pair> | null = null
/** Every pair started and not yet stopped: none may outlive the test (it would keep tap waiting). */
const live = new Set<Promise<Pair>>()
let finished = false

function startPair(): Promise<Pair> {
  const pair = Promise.all([startServer(), startServer()]) as Promise<Pair>
  live.add(pair)
  return pair
}

async function stopPair(pair: Promise<Pair>): Promise<void> {
  if (!live.delete(pair)) return
  const [a, b] = await pair
  await Promise.all([a.stop(), b.stop()])
  removeDir(a.spool)
  removeDir(b.spool)
}

/** Runs one script per call on a new pair of servers, stopped afterwards. */
export async function withTwoServers<T>(fn: (a: RunningServer, b: RunningServer) => Promise<T>): Promise<T> {
  const pair = spare ?? startPair()
  spare = finished ? null : startPair()
  try {
    const [a, b] = await pair
    return await fn(a, b)
  } finally {
    await stopPair(pair)
  }
}

/** Stop every pair still running, the one started ahead included (at the end of the test). */
export async function stopSpare(): Promise<void> {
  finished = true
  spare = null
  await Promise.all([...live].map((pair) => stopPair(pair)))
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s))
    s.once('error', reject)
  })
}

/**
 * A socket that collects everything it receives; `waitFor(pred)` resolves when the collected bytes
 * satisfy `pred` (or rejects with them after `timeoutMs`).
 */
export class Collector {
  buf = Buffer.alloc(0)
  private wake: (() => void) | null = null
  closed = false

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d])
      this.wake?.()
    })
    socket.on('close', () => {
      this.closed = true
      this.wake?.()
    })
    socket.on('error', () => {})
  }

  static async connect(port: number): Promise<Collector> {
    return new Collector(await open(port))
  }

  async waitFor(pred: (buf: Buffer) => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!pred(this.buf)) {
      if (this.closed) throw new Error(`connection closed; got ${JSON.stringify(this.buf.toString('latin1'))}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timeout; got ${JSON.stringify(this.buf.toString('latin1'))}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      this.wake = null
    }
  }

  close(): void {
    this.socket.destroy()
  }
}

/**
 * Run `commands` (each already followed by its marker) pipelined on server a and one at a time on
 * server b; `markers(buf)` counts complete markers in a transcript, `expected[i]` how many command
 * i yields (its own marker, plus one if the command is itself a marker command).
 */
export async function runBoth(
  a: RunningServer,
  b: RunningServer,
  commands: Buffer[],
  markers: (buf: Buffer) => number,
  expected: number[] = commands.map(() => 1),
): Promise<{ pipelined: Buffer; oneByOne: Buffer }> {
  const p = await Collector.connect(a.port)
  const r = await Collector.connect(b.port)
  try {
    p.socket.write(Buffer.concat(commands))
    let total = 0
    const oneByOne = (async () => {
      for (let i = 0; i < commands.length; i++) {
        total += expected[i]!
        const want = total
        r.socket.write(commands[i]!)
        await r.waitFor((buf) => markers(buf) >= want)
      }
    })()
    const all = expected.reduce((x, y) => x + y, 0)
    await Promise.all([p.waitFor((buf) => markers(buf) >= all), oneByOne])
    return { pipelined: p.buf, oneByOne: r.buf }
  } finally {
    p.close()
    r.close()
  }
}

/** Where two transcripts first differ, with some context (for the failure message). */
export function firstDifference(p: string, o: string): string {
  let i = 0
  while (i < p.length && i < o.length && p[i] === o[i]) i++
  const from = Math.max(0, i - 120)
  return `at byte ${i}:\n  pipelined:  ${JSON.stringify(p.slice(from, i + 120))}\n  one by one: ${JSON.stringify(o.slice(from, i + 120))}`
}

/**
 * Run a differential property with the fixed examples first: a bounded number of random scripts
 * under `npm test` (at most 30 s), many under `npm run fuzz`; `STARLING_FUZZ_SECONDS` and
 * `STARLING_SEED` bound or replay a run. The spare server pair is stopped whatever happens.
 */
export async function assertDifferential<T>(property: fc.IAsyncPropertyWithHooks<[T]>, examples: T[], numRuns: number): Promise<void> {
  try {
    await fc.assert(property, {
      numRuns,
      examples: examples.map((e): [T] => [e]),
      interruptAfterTimeLimit: Number(process.env['STARLING_FUZZ_SECONDS'] ?? (FUZZ ? 3000 : 30)) * 1000,
      seed: process.env['STARLING_SEED'] ? Number(process.env['STARLING_SEED']) : undefined,
    })
  } finally {
    await stopSpare()
  }
}
