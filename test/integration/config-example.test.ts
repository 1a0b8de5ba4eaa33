/**
 * config.yml.example starts as shipped (issue 12 item 7): the real CLI loads it unchanged (only the
 * port is moved off 22122, which another process may hold), and an empty section — `queues:` whose
 * children are all commented out, as in the example — is an empty map.
 */
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { ROOT, SERVER_MAIN, removeDir, tempDir } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'

const EXAMPLE = join(ROOT, 'config.yml.example')

t.test('the example config starts the server as shipped', async (t) => {
  const text = readFileSync(EXAMPLE, 'utf8')
  t.match(text, /^\s+queues:\s*$/m, 'the example has a queues: section...')
  t.match(text, /^\s+queues:\s*\n(\s+#.*\n)+/m, '...whose children are all commented out')
  const cwd = tempDir()
  t.teardown(() => removeDir(cwd))
  const proc = spawn(process.execPath, [SERVER_MAIN, '-f', EXAMPLE, '-p', '0'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<number | null>((r) => proc.on('exit', r))
  let output = ''
  const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
    for (const s of [proc.stdout, proc.stderr]) {
      createInterface({ input: s }).on('line', (line) => {
        output += line + '\n'
        try {
          const entry = JSON.parse(line) as Record<string, unknown>
          if (entry.msg === 'listening') resolve(entry)
        } catch {
          /* not JSON */
        }
      })
    }
    void exited.then((code) => reject(new Error(`exited ${code}: ${output}`)))
  })
  t.equal(listening.config, EXAMPLE, 'the listening line names the config file')
  t.equal(listening.spool, join(cwd, 'spool'), 'queue_path ./spool from the example')
  t.equal(statSync(join(cwd, 'spool')).mode & 0o777, 0o700)
  const c = await RawClient.connect(listening.port as number)
  t.equal(await c.set('jobs', 'hello'), 'STORED')
  t.equal(await c.get('jobs'), 'hello')
  c.close()
  proc.kill('SIGTERM')
  t.equal(await exited, 0, 'clean exit')
})

t.test('empty sections are empty maps (an empty auth: still needs users)', async (t) => {
  const dir = tempDir()
  t.teardown(() => removeDir(dir))
  const conf = join(dir, 'auth.yml')
  writeFileSync(conf, 'starling:\n  auth:\n')
  const r = spawnSync(process.execPath, [SERVER_MAIN, '-f', conf, '-p', '0', '-q', join(dir, 'spool')], { encoding: 'utf8', timeout: 30_000 })
  t.equal(r.status, 1, 'an empty auth: section fails closed')
  t.equal(r.stderr.trim(), 'starling: config key starling.auth.users is required')
  // A queue with an empty settings block exists from start-up.
  const conf2 = join(dir, 'child.yml')
  writeFileSync(conf2, 'starling:\n  queues:\n    changes+search:\n')
  const proc = spawn(process.execPath, [SERVER_MAIN, '-f', conf2, '-p', '0', '-q', join(dir, 'spool2')], { stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<number | null>((res) => proc.on('exit', res))
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: proc.stderr }).on('line', (line) => {
      const m = /"msg":"listening"/.test(line) ? (JSON.parse(line) as { port: number }).port : null
      if (m) resolve(m)
    })
    void exited.then((code) => reject(new Error(`exited ${code}`)))
  })
  const c = await RawClient.connect(port)
  t.match((await c.request('stats\r\n')).join('\n'), /STAT queue_changes\+search_items 0/, 'queue from an empty settings block')
  c.close()
  proc.kill('SIGTERM')
  t.equal(await exited, 0)
  t.ok(existsSync(join(dir, 'spool2')))
})
