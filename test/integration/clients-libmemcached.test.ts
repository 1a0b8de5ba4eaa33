/**
 * libmemcached's command-line tools (memccp, memccat, memcstat, memcrm) against the real server,
 * in text and --binary mode, and with SASL in binary mode.
 */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startServer, removeDir, type RunningServer } from '../helpers/server.js'
import { requireTool, run } from '../helpers/clients.js'

const TOOLS = ['memccp', 'memccat', 'memcstat', 'memcrm'] as const

t.before(() => {
  for (const tool of TOOLS) requireTool(tool, ['--version'], 'libmemcached-tools')
})

let server: RunningServer
const files = mkdtempSync(join(tmpdir(), 'starling-memc-'))
t.before(async () => {
  server = await startServer()
})
t.teardown(async () => {
  await server?.stop()
  if (server) removeDir(server.spool)
  rmSync(files, { recursive: true, force: true })
})

function tool(name: (typeof TOOLS)[number], s: RunningServer, args: string[]) {
  return run(name, [`--servers=${s.host}:${s.port}`, ...args])
}

/** memccp stores a file under its base name: write `content` to a file named after the queue. */
function file(queue: string, content: string | Buffer): string {
  const path = join(files, queue)
  writeFileSync(path, content)
  return path
}

for (const mode of ['text', 'binary'] as const) {
  const flag = mode === 'binary' ? ['--binary'] : []
  t.test(`libmemcached tools, ${mode} protocol`, async (t) => {
    const q = `memc_${mode}`
    const first = Buffer.from('first item\n\0\x01\xff bytes', 'latin1')
    t.equal((await tool('memccp', server, [...flag, file(q, first)])).code, 0, 'memccp stores')
    t.equal((await tool('memccp', server, [...flag, '--flag=7', file(q, 'second')])).code, 0, 'memccp stores with flags')

    const a = await tool('memccat', server, [...flag, q])
    t.equal(a.code, 0)
    t.same(a.stdout, Buffer.concat([first, Buffer.from('\n')]), 'memccat prints the oldest item, bytes intact')
    const b = await tool('memccat', server, [...flag, '--flag', q])
    t.equal(b.stdout.toString(), '7\nsecond\n', 'flags preserved, FIFO')
    const empty = await tool('memccat', server, [...flag, q])
    t.not(empty.code, 0, 'an empty queue is a miss')
    t.equal(empty.stdout.length, 0)

    const stat = await tool('memcstat', server, flag)
    // libmemcached parses the `version` stat and fails on a major version of 0.
    t.equal(stat.code, 0, `memcstat: ${stat.stderr}`)
    const text = stat.stdout.toString()
    t.match(text, new RegExp(`^Server: 127\\.0\\.0\\.1 \\(${server.port}\\)`), 'memcstat header')
    t.match(text, new RegExp(`\\n\\s+pid: ${server.proc.pid}\\n`), 'pid stat')
    t.match(text, new RegExp(`\\n\\s+queue_${q}_items: 0\\n`), 'per-queue stat')

    t.equal((await tool('memccp', server, [...flag, file(`${q}_rm`, 'x')])).code, 0)
    t.equal((await tool('memcrm', server, [...flag, `${q}_rm`])).code, 0, 'memcrm deletes a queue')
    t.not((await tool('memcrm', server, [...flag, `${q}_rm`])).code, 0, 'memcrm of a missing queue fails')
    t.not((await tool('memccat', server, [...flag, `${q}_rm`])).code, 0, 'the deleted queue is empty')
  })
}

t.test('libmemcached tools with SASL (binary protocol)', async (t) => {
  const authed = await startServer({ config: { auth: { users: { alice: 'secret' } } } })
  t.teardown(async () => {
    await authed.stop()
    removeDir(authed.spool)
  })
  const good = ['--binary', '--username=alice', '--password=secret']
  const bad = ['--binary', '--username=alice', '--password=wrong']
  t.not((await tool('memccp', authed, [...bad, file('memc_auth', 'intruder')])).code, 0, 'wrong password: memccp fails')
  t.equal((await tool('memccp', authed, [...good, file('memc_auth', 'welcome')])).code, 0, 'right password: memccp stores')
  t.not((await tool('memccat', authed, [...bad, 'memc_auth'])).code, 0, 'wrong password: memccat fails')
  const got = await tool('memccat', authed, [...good, 'memc_auth'])
  t.equal(got.stdout.toString(), 'welcome\n', 'right password: memccat reads the one stored item')
})
