/**
 * The classic Starling producer: put work on a queue.
 *
 *   node dist/examples/producer.js [--servers host:port,...] [--queue jobs] [--count 10]
 */
import { parseArgs } from 'node:util'
import { StarlingClient } from '../src/index.js'
import { serversFrom } from './options.js'

const { values } = parseArgs({
  options: {
    servers: { type: 'string' },
    queue: { type: 'string', default: 'jobs' },
    count: { type: 'string', default: '10' },
  },
})
const queue = values.queue!
const count = Number(values.count)

const starling = new StarlingClient(serversFrom(values.servers))
try {
  for (let id = 1; id <= count; id++) {
    await starling.set(queue, { id, task: `resize image ${id}`, createdAt: new Date().toISOString() })
  }
  console.log(`queued ${count} items on ${queue}; ${queue} now holds ${await starling.sizeof(queue)}`)
} finally {
  await starling.close()
}
