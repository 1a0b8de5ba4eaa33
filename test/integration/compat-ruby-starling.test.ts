/**
 * Starling's own Ruby client (Starling 0.10 + memcache-client 1.8, from ../shared/compat, not
 * packaged by Debian), run unchanged against the server (issue 12 item 13). Its available_queues
 * reads every stat named queue_<name>_items except *_total and *_expired, so any other per-queue
 * stat ending in _items would show up as a phantom queue.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { ROOT, serverFor } from '../helpers/server.js'

// In CI, shared/ is a sibling of the repository clone; in a worktree it is found the same way up.
function findClient(): string | null {
  const candidates = [resolve(ROOT, '..', 'shared'), resolve(ROOT, '..', '..', 'shared'), resolve(ROOT, '..', '..', '..', 'shared')]
  for (const shared of candidates) {
    const lib = join(shared, 'compat', 'ruby-starling-client', 'lib')
    if (existsSync(join(lib, 'starling.rb'))) return lib
  }
  return null
}

const SCRIPT = `
require "yaml"; require "json"; require "memcache"; require "starling"
s = Starling.new(ARGV[0])
s.set("jobs", {"id" => 1})
s.set("jobs", {"id" => 2})
s.set("mail", "hello")
s.set("changes+audit", "c")
out = {
  "sizeof_jobs" => s.sizeof("jobs"),
  "queues" => s.available_queues.sort,
  "all" => s.sizeof(:all),
  "get" => s.get("jobs"),
  "fetch_mail" => s.fetch("mail"),
  "fetch_empty" => s.fetch("mail"),
  "after" => s.sizeof(:all),
}
puts JSON.generate(out)
`

t.test("Starling's Ruby client, unchanged: set, sizeof, available_queues, sizeof(:all), get — no phantom queue", async (t) => {
  const lib = findClient()
  t.ok(lib, `the Ruby Starling client is in <repo>/../shared/compat/ruby-starling-client (looked from ${ROOT})`)
  if (!lib) return
  const s = await serverFor(t)
  const r = spawnSync('ruby', [`-I${lib}`, '-e', SCRIPT, `127.0.0.1:${s.port}`], { encoding: 'utf8', timeout: 30_000 })
  t.equal(r.status, 0, `ruby ran: ${r.stderr}`)
  const out = JSON.parse(r.stdout) as Record<string, unknown>
  t.equal(out.sizeof_jobs, 2)
  t.same(out.queues, ['changes+audit', 'jobs', 'mail'], 'exactly the real queues')
  t.same(out.all, { jobs: 2, mail: 1, 'changes+audit': 1 })
  t.same(out.get, { id: 1 }, 'Marshal round trip, FIFO')
  t.equal(out.fetch_mail, 'hello')
  t.equal(out.fetch_empty, null)
  t.same(out.after, { jobs: 1, mail: 0, 'changes+audit': 1 })
})
