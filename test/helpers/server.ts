/**
 * Test helper: run the real server as a child process (built `dist/`), on a free loopback port,
 * with a temp spool directory. `kill()` is SIGKILL (crash); `stop()` is SIGTERM (clean).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const SERVER_MAIN = join(ROOT, 'dist', 'src', 'server', 'main.js')

export interface ServerOptions {
  /** Extra YAML under `starling:` (a string, already indented by the caller or flat keys). */
  config?: Record<string, unknown>
  /** Reuse a spool directory (restart tests). */
  spool?: string
  /** Extra CLI args. */
  args?: string[]
  env?: Record<string, string>
  /** Log to this file (-L): the helper then reads the log lines from it. */
  logFile?: string
  /** Run under `ulimit -n <fdLimit>` (through sh; the shell execs node, so the pid is the server's). */
  fdLimit?: number
}

export interface RunningServer {
  host: string
  port: number
  spool: string
  proc: ChildProcess
  /** Everything the server logged (pino JSON lines), parsed. */
  logs: Array<Record<string, unknown>>
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>
  /** Resolves when the process exits. */
  exited: Promise<number | null>
}

export function tempDir(prefix = 'starling-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const spool = options.spool ?? tempDir()
  const args = [SERVER_MAIN, '-h', '127.0.0.1', '-p', '0', '-q', spool]
  if (options.config) {
    const file = join(tempDir('starling-conf-'), 'config.yml')
    writeFileSync(file, JSON.stringify({ starling: options.config })) // JSON is YAML
    args.push('-f', file)
  }
  args.push(...(options.args ?? []))
  if (options.logFile) args.push('-L', options.logFile)
  const proc = options.fdLimit
    ? spawn('sh', ['-c', `ulimit -n ${options.fdLimit} && exec "$0" "$@"`, process.execPath, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...options.env },
      })
    : spawn(process.execPath, args, {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...options.env },
      })
  const logs: Array<Record<string, unknown>> = []
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)))
  const port = await new Promise<number>((resolve, reject) => {
    let stderrText = ''
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${stderrText}`)), 60_000)
    for (const stream of [proc.stdout!, proc.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        stderrText += line + '\n'
        let entry: Record<string, unknown>
        try {
          entry = JSON.parse(line) as Record<string, unknown>
        } catch {
          return
        }
        logs.push(entry)
        if (entry.msg === 'listening' && typeof entry.port === 'number') {
          clearTimeout(timer)
          resolve(entry.port)
        }
      })
    }
    if (options.logFile) {
      const file = options.logFile
      let seen = 0
      const poll = setInterval(() => {
        let text = ''
        try {
          text = readFileSync(file, 'utf8')
        } catch {
          return
        }
        const lines = text.split('\n').filter(Boolean)
        for (const line of lines.slice(seen)) {
          const entry = JSON.parse(line) as Record<string, unknown>
          logs.push(entry)
          if (entry.msg === 'listening' && typeof entry.port === 'number') {
            clearInterval(poll)
            clearTimeout(timer)
            resolve(entry.port)
          }
        }
        seen = lines.length
      }, 20)
      void exited.then(() => clearInterval(poll))
    }
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`server exited with ${code} before listening:\n${stderrText}`))
    })
  })
  return {
    host: '127.0.0.1',
    port,
    spool,
    proc,
    logs,
    exited,
    async stop() {
      proc.kill('SIGTERM')
      return exited
    },
    async kill() {
      proc.kill('SIGKILL')
      await exited
    },
  }
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
}

/** Start a server for one tap test: stopped and its spool removed when the test ends. */
export async function serverFor(
  t: { teardown(fn: () => unknown): void },
  options: ServerOptions = {},
): Promise<RunningServer> {
  const server = await startServer(options)
  t.teardown(async () => {
    if (server.proc.exitCode === null && server.proc.signalCode === null) await server.stop()
    removeDir(server.spool)
  })
  return server
}
