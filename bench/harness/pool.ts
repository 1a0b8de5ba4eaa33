/**
 * The orchestrator's side of the load-generator threads: hand each thread its share of a task,
 * wait until all have connected, start them together, collect their results.
 */
import { Worker } from 'node:worker_threads'
import { SHARED_ABORT, type FromWorker, type TaskResult, type TaskSpec, type ToWorker } from './task.js'

export class WorkerPool {
  private readonly workers: Worker[]
  private nextId = 1
  private readonly waiting = new Map<number, { resolve: (m: FromWorker) => void }>()

  constructor(readonly size: number) {
    this.workers = Array.from({ length: size }, () => {
      const worker = new Worker(new URL('./worker.js', import.meta.url))
      worker.on('message', (m: FromWorker) => {
        const w = this.waiting.get(m.id)
        if (w) {
          this.waiting.delete(m.id)
          w.resolve(m)
        }
      })
      worker.on('error', (err) => {
        for (const [id, w] of this.waiting) {
          this.waiting.delete(id)
          w.resolve({ type: 'failed', id, error: `worker crashed: ${err.message}` })
        }
      })
      worker.unref()
      return worker
    })
  }

  private call(worker: Worker, message: ToWorker & { id: number }, timeoutMs: number): Promise<FromWorker> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(message.id)
        resolve({ type: 'failed', id: message.id, error: `no reply to ${message.type} within ${timeoutMs} ms` })
      }, timeoutMs)
      this.waiting.set(message.id, {
        resolve: (m) => {
          clearTimeout(timer)
          resolve(m)
        },
      })
      worker.postMessage(message)
    })
  }

  /**
   * Runs one spec per thread (specs.length <= size), all started at once. Rejects if any thread
   * fails; the others are told to abort through the shared counters.
   */
  async run(specs: TaskSpec[], onGo?: () => void): Promise<TaskResult[]> {
    if (specs.length > this.workers.length) throw new Error('more task shares than threads')
    const ids = specs.map(() => this.nextId++)
    const prepared = await Promise.all(
      specs.map((spec, i) => this.call(this.workers[i]!, { type: 'prepare', id: ids[i]!, spec }, 30_000)),
    )
    const failedPrepare = prepared.find((m) => m.type === 'failed')
    if (failedPrepare && failedPrepare.type === 'failed') {
      // Threads that did connect get a go with the abort flag already set, so they close and report.
      for (const spec of specs) Atomics.store(new Int32Array(spec.shared), SHARED_ABORT, 1)
    }
    const slackMs = 30_000
    onGo?.()
    const results = await Promise.all(
      specs.map((spec, i) => {
        if (prepared[i]!.type !== 'ready') return Promise.resolve(prepared[i]!)
        return this.call(this.workers[i]!, { type: 'go', id: ids[i]! }, Math.max(0, spec.deadlineMs - Date.now()) + slackMs)
      }),
    )
    const failed = results.find((m) => m.type === 'failed')
    if (failed && failed.type === 'failed') {
      for (const spec of specs) Atomics.store(new Int32Array(spec.shared), SHARED_ABORT, 1)
      throw new Error(failed.error)
    }
    return results.map((m) => (m as Extract<FromWorker, { type: 'result' }>).result)
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()))
  }
}
