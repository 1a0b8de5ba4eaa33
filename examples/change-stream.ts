/**
 * A change stream with a fanout queue: every item set on `changes` is also added to each child
 * queue `changes+<name>` that exists, so the search indexer and the audit log each get every
 * change and consume at their own pace, independently.
 *
 *   node dist/examples/change-stream.js [--servers host:port,...] [--count 5]
 */
import { parseArgs } from 'node:util'
import { StarlingClient } from '../src/index.js'
import { serversFrom } from './options.js'

interface Change {
  seq: number
  table: string
  op: 'insert' | 'update' | 'delete'
}

const { values } = parseArgs({ options: { servers: { type: 'string' }, count: { type: 'string', default: '5' } } })
const count = Number(values.count)
const servers = serversFrom(values.servers)

/** One subscriber: its own client and child queue, reliable reads, stops after `count` changes. */
async function subscriber(name: string, handle: (change: Change) => Promise<void>): Promise<number> {
  const client = new StarlingClient(servers)
  const enough = new AbortController()
  let seen = 0
  try {
    // Each change is confirmed when the loop asks for the next one; aborting the signal ends the
    // loop at that point, so the last change is confirmed too (a `break` would hand it back).
    for await (const change of client.consume<Change>(`changes+${name}`, { signal: enough.signal })) {
      await handle(change)
      if (++seen === count) enough.abort()
    }
    return seen
  } finally {
    await client.close()
  }
}

const publisher = new StarlingClient(servers)
try {
  // A child receives changes from the moment it first exists: create both before publishing.
  await publisher.fetch('changes+search')
  await publisher.fetch('changes+audit')

  const search = subscriber('search', async (c) => {
    console.log(`search: reindex ${c.table} after ${c.op} #${c.seq}`)
  })
  const audit = subscriber('audit', async (c) => {
    await new Promise((r) => setTimeout(r, 20)) // a slower consumer does not hold up the other
    console.log(`audit:  record ${c.op} on ${c.table} #${c.seq}`)
  })

  const ops: Change['op'][] = ['insert', 'update', 'delete']
  for (let seq = 1; seq <= count; seq++) {
    await publisher.set('changes', { seq, table: seq % 2 ? 'users' : 'orders', op: ops[seq % 3]! })
  }
  const [searched, audited] = await Promise.all([search, audit])
  // The parent queue keeps its own copy; nobody reads it here, so drop it.
  const dropped = await publisher.flush('changes')
  console.log(`published ${count}; search saw ${searched}, audit saw ${audited}; ${dropped} left on the parent queue, flushed`)
} finally {
  await publisher.close()
}
