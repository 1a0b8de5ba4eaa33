/**
 * Model-based test of the engine with its journal (issue 12, item 15). Random sequences of set,
 * get, open, close, close+open, abort, peek, delete, flush, disconnect, clock moves (expiry),
 * clean restarts and crashes run against the real QueueCollection (built dist/, in a child process
 * on a real spool) and against a plain in-memory model; every reply must match the model's.
 *
 * A crash is SIGKILL of the child: between commands (sent by the parent), or right after a reply
 * was written (the child kills itself), the worst moment for an acknowledged command. The model
 * states what must hold: an acknowledged set is never lost; an item is never delivered twice,
 * except an open read not closed before a crash or restart (or aborted, or whose connection went
 * away), which comes back; order is FIFO (by set order, an item coming back takes its old place).
 * At the end every queue is drained and compared with the model.
 */
import t from 'tap'
import fc from 'fast-check'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import ts from 'typescript'
import { ROOT } from '../helpers/server.js'
import type { ChildCommand, ChildReply } from './fixtures/engine-child.js'

const FUZZ = process.env.STARLING_FUZZ === '1'
const RUNS = FUZZ ? Number(process.env.STARLING_FUZZ_RUNS ?? 500) : 40
/** Wall-clock cap: under `npm test` for a loaded machine; under fuzz, within tap's hour. */
const TIME_LIMIT_MS = FUZZ ? 50 * 60_000 : 30_000
const QUEUES = ['a', 'b', 'c'] as const
const CONNECTIONS = 3
const START_CLOCK = 1_700_000_000_000

// ---- the child ---------------------------------------------------------------------------------

/** The fixture as plain JavaScript (TypeScript's transpileModule, no type check), once per file. */
function transpileChild(): string {
  const dir = mkdtempSync(join(tmpdir(), 'starling-engine-child-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}')
  const source = join(ROOT, 'test/property/fixtures/engine-child.ts')
  const js = ts.transpileModule(readFileSync(source, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    fileName: source,
  }).outputText
  writeFileSync(join(dir, 'engine-child.js'), js)
  return join(dir, 'engine-child.js')
}

const CHILD = transpileChild()

class Engine {
  private replies: Array<(r: ChildReply | null) => void> = []
  private buffered: Array<ChildReply | null> = []
  readonly exited: Promise<void>

  private constructor(private readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (line) => this.deliver(JSON.parse(line) as ChildReply))
    this.exited = new Promise((resolve) => proc.on('exit', () => resolve()))
    // A dead child answers nothing more: pending and later requests see null.
    void this.exited.then(() => {
      this.dead = true
      for (const r of this.replies.splice(0)) r(null)
    })
  }

  private dead = false

  /** A started child, idle until `open`. */
  static async spawn(): Promise<Engine> {
    const proc = spawn(process.execPath, [CHILD, ROOT], { stdio: ['pipe', 'pipe', 'inherit'] })
    const engine = new Engine(proc)
    const ready = await engine.next()
    if (!ready?.ok) throw new Error('engine child did not start')
    return engine
  }

  get alive(): boolean {
    return !this.dead
  }

  private deliver(r: ChildReply | null): void {
    const waiter = this.replies.shift()
    if (waiter) waiter(r)
    else this.buffered.push(r)
  }

  private next(): Promise<ChildReply | null> {
    if (this.buffered.length > 0) return Promise.resolve(this.buffered.shift()!)
    if (this.dead) return Promise.resolve(null)
    return new Promise((resolve) => this.replies.push(resolve))
  }

  async send(cmd: ChildCommand): Promise<ChildReply> {
    this.proc.stdin!.write(JSON.stringify(cmd) + '\n')
    let timer: NodeJS.Timeout | undefined
    const r = await Promise.race([
      this.next(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`engine child did not answer ${JSON.stringify(cmd)} in 20 s`)), 20_000)
      }),
    ]).finally(() => clearTimeout(timer))
    if (r === null) throw new Error(`engine child died before answering ${JSON.stringify(cmd)}`)
    if (cmd.die) await this.exited
    return r
  }

  async crash(): Promise<void> {
    this.proc.kill('SIGKILL')
    await this.exited
  }
}

/**
 * Children are slow to start on a loaded machine, so one spare is always starting in the
 * background; a crash takes it (it opens the spool only then: one process per spool at a time).
 */
class Engines {
  private spare: Promise<Engine> = Engine.spawn()

  async open(spool: string, now: number): Promise<Engine> {
    const engine = await this.spare
    this.spare = Engine.spawn()
    const r = await engine.send({ op: 'open', spool, now })
    if (!r.ok) throw new Error(`cannot open the spool: ${r.err}`)
    return engine
  }

  async close(): Promise<void> {
    await (await this.spare).crash()
  }
}

// ---- the model ---------------------------------------------------------------------------------

interface ModelItem {
  id: number
  expiresAt: number
}

/** What the engine must do, in plain data structures. Items are kept in set (= id) order. */
class Model {
  readonly queues = new Map<string, ModelItem[]>()
  /** connection → queue → its open read. */
  readonly open = new Map<number, Map<string, ModelItem>>()
  now = START_CLOCK

  set(q: string, item: ModelItem): void {
    const list = this.queues.get(q) ?? []
    list.push(item)
    this.queues.set(q, list)
  }

  private putBack(q: string, item: ModelItem): void {
    const list = this.queues.get(q) ?? []
    let i = 0
    while (i < list.length && list[i]!.id < item.id) i++
    list.splice(i, 0, item)
    this.queues.set(q, list)
  }

  private head(q: string): ModelItem | null {
    const list = this.queues.get(q) ?? []
    while (list.length > 0 && list[0]!.expiresAt !== 0 && list[0]!.expiresAt <= this.now) list.shift()
    return list[0] ?? null
  }

  /** PersistentQueue.get's rules: close confirms, abort returns, peek looks, open holds. */
  get(c: number, q: string, o: { open: boolean; close: boolean; abort: boolean; peek: boolean }): ChildReply {
    const mine = this.open.get(c) ?? new Map<string, ModelItem>()
    this.open.set(c, mine)
    if (o.close) mine.delete(q)
    if (o.abort) {
      const item = mine.get(q)
      if (item) {
        mine.delete(q)
        this.putBack(q, item)
      }
      return { ok: true, item: null }
    }
    if (o.close && !o.open) return { ok: true, item: null }
    if (o.open && mine.has(q)) return { ok: false, err: 'OPEN_READ_PENDING' }
    const head = this.head(q)
    if (!head) return { ok: true, item: null }
    if (o.peek) return { ok: true, item: head.id }
    this.queues.get(q)!.shift()
    if (o.open) mine.set(q, head)
    return { ok: true, item: head.id }
  }

  /** delete and flush: the queue's items and every open read on it are gone. */
  drop(q: string): void {
    this.queues.delete(q)
    for (const mine of this.open.values()) mine.delete(q)
  }

  /** A connection went away (or the process did): its open reads come back. */
  release(c: number): void {
    for (const [q, item] of this.open.get(c) ?? []) this.putBack(q, item)
    this.open.delete(c)
  }

  restart(): void {
    for (const c of [...this.open.keys()]) this.release(c)
  }
}

// ---- commands ----------------------------------------------------------------------------------

type Step =
  | { op: 'set'; q: string; size: number; ttlMs: number; die: boolean }
  | { op: 'get'; c: number; q: string; open: boolean; close: boolean; abort: boolean; peek: boolean; die: boolean }
  | { op: 'delete' | 'flush'; q: string; die: boolean }
  | { op: 'release'; c: number }
  | { op: 'clock'; advanceMs: number }
  | { op: 'restart' | 'crash' }

const queue = fc.constantFrom(...QUEUES)
const connection = fc.integer({ min: 1, max: CONNECTIONS })
/** Rarely: the child dies right after this command's reply. */
const die = fc.integer({ min: 0, max: 14 }).map((n) => n === 0)
const getFlags = fc.constantFrom(
  { open: false, close: false, abort: false, peek: false },
  { open: true, close: false, abort: false, peek: false },
  { open: false, close: true, abort: false, peek: false },
  { open: true, close: true, abort: false, peek: false },
  { open: false, close: false, abort: true, peek: false },
  { open: false, close: false, abort: false, peek: true },
)

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('set' as const), q: queue, size: fc.integer({ min: 8, max: 300 }), ttlMs: fc.constantFrom(0, 0, 0, 1000, 5000), die }) },
  { weight: 7, arbitrary: fc.tuple(connection, queue, getFlags, die).map(([c, q, f, d]) => ({ op: 'get' as const, c, q, ...f, die: d })) },
  { weight: 1, arbitrary: fc.record({ op: fc.constantFrom('delete' as const, 'flush' as const), q: queue, die }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('release' as const), c: connection }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('clock' as const), advanceMs: fc.constantFrom(500, 1000, 3000, 6000) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constantFrom('restart' as const, 'crash' as const) }) },
)

const plain = { open: false, close: false, abort: false, peek: false }
/** Sequences always run first: the cases a crash is most likely to get wrong. */
const EXAMPLES: Array<[Step[]]> = [
  // A read confirmed (close) just before a crash must not come back.
  [[
    { op: 'set', q: 'a', size: 10, ttlMs: 0, die: false },
    { op: 'set', q: 'a', size: 10, ttlMs: 0, die: false },
    { op: 'get', c: 1, q: 'a', ...plain, open: true, die: false },
    { op: 'get', c: 1, q: 'a', ...plain, close: true, die: true },
  ]],
  // The same with close+open: the first is confirmed, the second is open when the crash comes.
  [[
    { op: 'set', q: 'b', size: 10, ttlMs: 0, die: false },
    { op: 'set', q: 'b', size: 10, ttlMs: 0, die: false },
    { op: 'get', c: 2, q: 'b', ...plain, open: true, die: false },
    { op: 'get', c: 2, q: 'b', ...plain, open: true, close: true, die: true },
  ]],
]

/** Run one sequence; throws with the step and both answers on the first disagreement. */
async function check(engines: Engines, reuse: Engine | null, steps: Step[]): Promise<Engine> {
  const spool = mkdtempSync(join(tmpdir(), 'starling-model-'))
  const model = new Model()
  let engine: Engine
  if (reuse?.alive) {
    engine = reuse
    const r = await engine.send({ op: 'open', spool, now: model.now })
    if (!r.ok) throw new Error(`cannot open the spool: ${r.err}`)
  } else {
    engine = await engines.open(spool, model.now)
  }
  let nextId = 1
  const agree = (i: number, s: Step, want: ChildReply, got: ChildReply): void => {
    if (want.ok !== got.ok || (want.item ?? null) !== (got.item ?? null) || (!want.ok && want.err !== got.err)) {
      throw new Error(`step ${i} ${JSON.stringify(s)}: model ${JSON.stringify(want)}, engine ${JSON.stringify(got)}`)
    }
  }
  try {
    for (const [i, s] of steps.entries()) {
      switch (s.op) {
        case 'set': {
          const id = nextId++
          const expiresAt = s.ttlMs > 0 ? model.now + s.ttlMs : 0
          const got = await engine.send({ op: 'set', q: s.q, id, size: s.size, expiresAt, die: s.die })
          agree(i, s, { ok: true }, got)
          model.set(s.q, { id, expiresAt })
          break
        }
        case 'get': {
          const want = model.get(s.c, s.q, s)
          agree(i, s, want, await engine.send({ op: 'get', c: s.c, q: s.q, open: s.open, close: s.close, abort: s.abort, peek: s.peek, die: s.die }))
          break
        }
        case 'delete':
        case 'flush':
          agree(i, s, { ok: true }, await engine.send({ op: s.op, q: s.q, die: s.die }))
          model.drop(s.q)
          break
        case 'release':
          await engine.send({ op: 'release', c: s.c })
          model.release(s.c)
          break
        case 'clock':
          model.now += s.advanceMs
          await engine.send({ op: 'clock', now: model.now })
          break
        case 'restart':
          // Clean: every journal closed, then the spool loaded again by a fresh collection.
          agree(i, s, { ok: true }, await engine.send({ op: 'restart' }))
          model.restart()
          break
        case 'crash':
          await engine.crash()
          break
      }
      if (s.op === 'crash' || ('die' in s && s.die)) {
        model.restart()
        engine = await engines.open(spool, model.now)
      }
    }
    // Drain: everything acknowledged and not consumed comes out, once, in order.
    await engine.send({ op: 'restart' })
    model.restart()
    for (const q of QUEUES) {
      for (;;) {
        const want = model.get(1, q, { open: false, close: false, abort: false, peek: false })
        const got = await engine.send({ op: 'get', c: 1, q })
        agree(-1, { op: 'get', c: 1, q, open: false, close: false, abort: false, peek: false, die: false }, want, got)
        if (want.item === null) break
      }
    }
    await engine.send({ op: 'close' })
    return engine
  } catch (err) {
    await engine.crash()
    throw err
  } finally {
    rmSync(spool, { recursive: true, force: true })
  }
}

t.test('the engine with its journal behaves as the model, across restarts and crashes', async (t) => {
  const startedAt = Date.now()
  let cases = 0
  const engines = new Engines()
  let idle: Engine | null = null
  t.teardown(async () => {
    await idle?.crash()
    await engines.close()
  })
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 5, maxLength: FUZZ ? 80 : 40 }), async (steps) => {
      // Past the time limit the remaining cases pass without running (counted apart below).
      if (Date.now() - startedAt > TIME_LIMIT_MS) return
      cases++
      const reuse = idle
      idle = null
      idle = await check(engines, reuse, steps)
    }),
    // The examples run first, whatever the time limit.
    { numRuns: RUNS, endOnFailure: !FUZZ, examples: EXAMPLES },
  )
  const ms = Date.now() - startedAt
  t.comment(`engine model: ${cases} cases in ${(ms / 1000).toFixed(1)} s = ${Math.round((cases * 60_000) / ms)} cases/min`)
  t.ok(cases > EXAMPLES.length, `${cases} sequences (${EXAMPLES.length} fixed, the rest random) agree with the model`)
})
