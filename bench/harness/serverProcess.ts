/**
 * A spawned server process as the single-server benches (memory.ts, manyQueues.ts) use it: wait for
 * its "listening" log line to learn the port, and stop it with SIGTERM.
 */
import type { ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'

export interface Server {
  proc: ChildProcess
  port: number
  /** Spawn to listening, in ms. */
  startMs: number
}

/** The port the server logs in its "listening" line; rejects (with its output) if it exits first. */
export function listening(proc: ChildProcess, t0: number): Promise<Server> {
  return new Promise<Server>((resolve, reject) => {
    let text = ''
    proc.on('exit', (code) => reject(new Error(`server exited ${code}: ${text}`)))
    for (const s of [proc.stdout!, proc.stderr!]) {
      createInterface({ input: s }).on('line', (line) => {
        if (text.length < 10000) text += line + '\n'
        try {
          const e = JSON.parse(line) as { msg?: string; port?: number }
          if (e.msg === 'listening' && typeof e.port === 'number') resolve({ proc, port: e.port, startMs: performance.now() - t0 })
        } catch {
          /* not a log line */
        }
      })
    }
  })
}

export function stop(s: Server): Promise<void> {
  return new Promise((resolve) => {
    s.proc.once('exit', () => resolve())
    s.proc.kill('SIGTERM')
  })
}
