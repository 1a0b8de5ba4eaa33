/**
 * A priority worker: takes jobs from `high`, then `medium`, then `low` — always the highest
 * non-empty queue first — holding each job as an open read while it runs: confirmed when the
 * handler succeeds, handed back (and redelivered) when it throws or the worker dies.
 *
 *   node dist/examples/priority-poller.js [--servers host:port,...] [--queues high,medium,low]
 *        [--concurrency 4] [--pid worker.pid] [--work-ms 10] [--exit-when-idle]
 *
 * Signals: SIGTERM / SIGINT finish the jobs in flight, remove the pid file and exit 0.
 * SIGHUP is a graceful restart: finish the jobs in flight, reconnect, start taking jobs again.
 * A job whose payload has `failOnce: true` throws the first time it runs, to show redelivery.
 */
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { StarlingClient, type Poller } from '../src/index.js'
import { serversFrom } from './options.js'

interface Job {
  id: number | string
  failOnce?: boolean
}

const { values } = parseArgs({
  options: {
    servers: { type: 'string' },
    queues: { type: 'string', default: 'high,medium,low' },
    concurrency: { type: 'string', default: '4' },
    pid: { type: 'string' },
    'work-ms': { type: 'string', default: '10' },
    'exit-when-idle': { type: 'boolean', default: false },
  },
})
const queues = values.queues!.split(',')
const workMs = Number(values['work-ms'])
const pidFile = values.pid

function claimPidFile(file: string): void {
  if (existsSync(file)) {
    const pid = Number(readFileSync(file, 'utf8').trim())
    let alive = false
    try {
      process.kill(pid, 0)
      alive = pid > 0
    } catch {
      alive = false
    }
    if (alive) {
      console.error(`priority-poller: already running as pid ${pid} (${file})`)
      process.exit(1)
    }
  }
  writeFileSync(file, `${process.pid}\n`)
}

function releasePidFile(): void {
  if (pidFile === undefined) return
  try {
    if (readFileSync(pidFile, 'utf8').trim() === String(process.pid)) unlinkSync(pidFile)
  } catch {
    // already gone
  }
}

const failedBefore = new Set<Job['id']>()

async function runOnce(): Promise<'restart' | 'exit'> {
  const client = new StarlingClient(serversFrom(values.servers))
  let next: 'restart' | 'exit' = 'exit'
  const poller: Poller<Job> = client.poll<Job>(
    queues,
    async (job, item) => {
      await new Promise((r) => setTimeout(r, workMs))
      if (job.failOnce && !failedBefore.has(job.id)) {
        failedBefore.add(job.id)
        throw new Error(`job ${job.id} failed`)
      }
      console.log(`done ${item.queue} ${job.id}`)
    },
    {
      concurrency: Number(values.concurrency),
      idleTimeoutMs: 500,
      stopWhenIdle: values['exit-when-idle'],
      stopOnSignals: ['SIGTERM', 'SIGINT'],
      onError: (err, item) => console.log(`failed ${item?.queue ?? '-'}: ${(err as Error).message}${item ? ' (handed back)' : ''}`),
    },
  )
  const onHup = (): void => {
    next = 'restart'
    console.log('SIGHUP: finishing jobs in flight, then restarting')
    void poller.stop()
  }
  process.once('SIGHUP', onHup)
  await poller.done
  process.off('SIGHUP', onHup)
  await client.close()
  console.log(`poller stopped: ${poller.processed} done, ${poller.failed} handed back`)
  return next
}

if (pidFile !== undefined) claimPidFile(pidFile)
process.on('exit', releasePidFile)
console.log(`priority-poller ${process.pid} taking from ${queues.join(' > ')}`)
while ((await runOnce()) === 'restart') console.log('restarted')
