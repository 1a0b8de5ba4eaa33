import t from 'tap'
import { parseStats, queueStats } from '../../src/client/stats.js'

t.test('numbers are parsed, other values kept as strings', async (t) => {
  const s = parseStats([
    ['pid', '42'],
    ['rusage_user', '0.123456'],
    ['version', '0.1.0'],
    ['time', '1700000000'],
  ])
  t.same(s, { pid: 42, rusage_user: 0.123456, version: '0.1.0', time: 1700000000 })
})

t.test('queue fields group by queue, names with underscores included', async (t) => {
  const pairs: Array<[string, string]> = []
  for (const [q, items] of [
    ['jobs', 3],
    ['jobs_x', 1],
    ['my_queue_items', 7],
    ['a+b', 2],
  ] as const) {
    pairs.push([`queue_${q}_items`, String(items)], [`queue_${q}_total_items`, '10'], [`queue_${q}_logsize`, '300'])
    pairs.push([`queue_${q}_expired_items`, '1'], [`queue_${q}_age`, '12'], [`queue_${q}_open_transactions`, '0'])
  }
  const queues = queueStats(parseStats([['pid', '1'], ...pairs]))
  t.same(Object.keys(queues), ['jobs', 'jobs_x', 'my_queue_items', 'a+b'])
  t.same(queues.jobs, { items: 3, total_items: 10, logsize: 300, expired_items: 1, age: 12, open_transactions: 0 })
  t.equal(queues.jobs_x!.items, 1)
  t.equal(queues.my_queue_items!.items, 7)
  t.equal(queues['a+b']!.age, 12)
})

t.test('UTF-8 queue names come back from the wire bytes', async (t) => {
  const latin1 = Buffer.from('queue_café_items', 'utf8').toString('latin1')
  t.same(Object.keys(parseStats([[latin1, '1']])), ['queue_café_items'])
})

t.test("the server's extra per-queue fields, a fanout child's parent included", async (t) => {
  const pairs: Array<[string, string]> = []
  for (const q of ['jobs', 'jobs+audit']) {
    pairs.push([`queue_${q}_items`, '2'], [`queue_${q}_total_items`, '5'], [`queue_${q}_logsize`, '90'], [`queue_${q}_expired_items`, '0'])
    pairs.push([`queue_${q}_age`, '3'], [`queue_${q}_mem_count`, '2'], [`queue_${q}_mem_bytes`, '10'])
  }
  pairs.push(['queue_jobs+audit_fanout_parent', 'jobs'])
  const queues = queueStats(parseStats(pairs))
  t.same(Object.keys(queues), ['jobs', 'jobs+audit'], 'no phantom queue from mem_count')
  t.equal(queues.jobs!.mem_count, 2)
  t.equal(queues['jobs+audit']!.fanout_parent, 'jobs')
  t.equal(queues.jobs!.fanout_parent, undefined)
})
