/**
 * Test helper for third-party clients run as child processes (ruby, php, python, libmemcached
 * tools). A missing tool is a test failure with the package to install, never a skip.
 */
import { spawn, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { ROOT } from './server.js'

export const FIXTURES = join(ROOT, 'test', 'fixtures', 'clients')

export interface RunResult {
  code: number | null
  stdout: Buffer
  stderr: string
}

/** Run a command to completion (no shell). */
export function run(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; input?: Buffer | string; timeoutMs?: number; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: { ...process.env, ...options.env },
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    const out: Buffer[] = []
    let err = ''
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000)
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout: Buffer.concat(out), stderr: err })
    })
    // A tool that exits without reading its input must not fail the test with EPIPE.
    child.stdin.on('error', () => {})
    child.stdin.end(options.input ?? '')
  })
}

/** Run a fixture script that prints one JSON object; fail loudly with its stderr otherwise. */
export async function runJson(command: string, args: string[], env: Record<string, string>): Promise<Record<string, unknown>> {
  const r = await run(command, args, { env })
  const text = r.stdout.toString().trim()
  if (r.code !== 0 || text === '') {
    throw new Error(`${command} ${args.join(' ')} exited ${r.code}\nstdout: ${text}\nstderr: ${r.stderr}`)
  }
  return JSON.parse(text.split('\n').pop()!) as Record<string, unknown>
}

/**
 * Throw (failing the test) unless `command args` exits 0. `install` names the Debian packages
 * that provide it, so the message says exactly what CI is missing.
 */
export function requireTool(command: string, args: string[], install: string): void {
  const r = spawnSync(command, args, { stdio: 'pipe', timeout: 30_000 })
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : `exit ${r.status}: ${r.stderr?.toString().trim()}`
    throw new Error(`required client missing: \`${command} ${args.join(' ')}\` failed (${why}); install with: apt-get install -y ${install}`)
  }
}
