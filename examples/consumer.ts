/**
 * The classic Starling consumer: take work off a queue, one item at a time. `get` waits on the
 * server (no sleep-and-retry); with --idle-ms the consumer exits when nothing came for that long.
 *
 *   node dist/examples/consumer.js [--servers host:port,...] [--queue jobs] [--count N] [--idle-ms 2000]
 */
import { parseArgs } from 'node:util'
import { StarlingClient } from '../src/index.js'
import { serversFrom } from './options.js'

interface Job {
  id: number
  task: string
  createdAt: string
}

const { values } = parseArgs({
  options: {
    servers: { type: 'string' },
    queue: { type: 'string', default: 'jobs' },
    count: { type: 'string' },
    'idle-ms': { type: 'string' },
  },
})
const queue = values.queue!
const limit = values.count === undefined ? Infinity : Number(values.count)
const idleMs = values['idle-ms'] === undefined ? undefined : Number(values['idle-ms'])

const starling = new StarlingClient(serversFrom(values.servers))
const stop = new AbortController()
process.once('SIGINT', () => stop.abort())
process.once('SIGTERM', () => stop.abort())

let done = 0
try {
  while (done < limit) {
    const job = await starling.get<Job>(queue, { timeoutMs: idleMs, signal: stop.signal })
    if (job === undefined) break // idle for --idle-ms
    done++
    console.log(`job ${job.id}: ${job.task} (waited ${Date.now() - Date.parse(job.createdAt)} ms)`)
  }
} catch (err) {
  if (!stop.signal.aborted) throw err
} finally {
  await starling.close()
}
console.log(`processed ${done} items from ${queue}`)
