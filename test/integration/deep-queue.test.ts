/**
 * A deep queue through the real server: 1 M items of 256 B with a 1 MB memory budget stay on disk
 * at a fraction of a byte of index each (the server's RSS stays far under 200 MB), survive a
 * restart (replay reads them back without keeping anything per item), and come out in order.
 * STARLING_DEEP_QUEUE_ITEMS overrides the count.
 */
import t from 'tap'
import { connect, type Socket } from 'node:net'
import { readFileSync } from 'node:fs'
import { startServer, removeDir } from '../helpers/server.js'

const SIZE = 256

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(m![1]) / 1024
}

/** Enqueue items [from, to) of stream `c` (payload "cc:iiiiiiiiii" padded), noreply, then sync with version. */
function load(port: number, c: number, from: number, to: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1')
    const header = Buffer.from(`set deepq 0 0 ${SIZE} noreply\r\n`)
    const rec = Buffer.alloc(header.length + SIZE + 2, 0x61)
    header.copy(rec)
    rec.write('\r\n', header.length + SIZE)
    let i = from
    const write = (): void => {
      while (i < to) {
        const n = Math.min(512, to - i)
        const buf = Buffer.allocUnsafe(rec.length * n)
        for (let k = 0; k < n; k++) {
          rec.copy(buf, k * rec.length)
          buf.write(`${String(c).padStart(2, '0')}:${String(i + k).padStart(10, '0')}`, k * rec.length + header.length, 'latin1')
        }
        i += n
        if (!sock.write(buf)) {
          sock.once('drain', write)
          return
        }
      }
      sock.write('version\r\n')
    }
    let reply = ''
    sock.on('data', (d) => {
      reply += d.toString('latin1')
      if (reply.includes('VERSION')) {
        sock.end()
        resolve()
      } else if (reply.length > 200) {
        reject(new Error(`unexpected reply: ${reply.slice(0, 200)}`))
      }
    })
    sock.on('error', reject)
    sock.on('connect', write)
  })
}

/** `count` pipelined plain gets; the 13-byte tag of each value, or null for an empty reply. */
function drain(port: number, count: number): Promise<Array<string | null>> {
  return new Promise((resolve, reject) => {
    const sock: Socket = connect(port, '127.0.0.1')
    let acc = Buffer.alloc(0)
    const out: Array<string | null> = []
    sock.on('connect', () => {
      for (let k = 0; k < count; k += 1000) sock.write('get deepq\r\n'.repeat(Math.min(1000, count - k)))
    })
    sock.on('data', (d) => {
      acc = acc.length === 0 ? d : Buffer.concat([acc, d])
      for (;;) {
        const e = acc.indexOf('\r\n')
        if (e < 0) break
        const line = acc.subarray(0, e).toString('latin1')
        if (line === 'END') {
          acc = acc.subarray(e + 2)
          out.push(null)
        } else if (line.startsWith('VALUE ')) {
          const len = Number(line.split(' ')[3])
          if (acc.length < e + 2 + len + 2 + 5) break
          out.push(acc.subarray(e + 2, e + 2 + 13).toString('latin1'))
          acc = acc.subarray(e + 2 + len + 2 + 5)
        } else {
          reject(new Error(`unexpected reply: ${line}`))
          return
        }
        if (out.length === count) {
          sock.end()
          resolve(out)
          return
        }
      }
    })
    sock.on('error', reject)
  })
}

t.test('1 M items beyond the memory budget: RSS bounded, restart, order', async (t) => {
  const N = Number(process.env['STARLING_DEEP_QUEUE_ITEMS'] ?? 1_000_000)
  const STREAMS = 2
  const config = { max_memory_size: '1MB' }
  const s = await startServer({ config })
  t.teardown(() => removeDir(s.spool))
  const per = N / STREAMS
  const t0 = performance.now()
  await Promise.all(Array.from({ length: STREAMS }, (_, c) => load(s.port, c, c * per, (c + 1) * per)))
  const loadMs = performance.now() - t0
  const rssLoaded = rssMiB(s.proc.pid!)
  t.comment(`${N} items enqueued in ${(loadMs / 1000).toFixed(1)} s; server RSS ${rssLoaded.toFixed(0)} MiB`)
  t.ok(rssLoaded < 200, `RSS ${rssLoaded.toFixed(0)} MiB with ${N} items of ${SIZE} B queued (${((N * SIZE) / 2 ** 20).toFixed(0)} MiB of payload)`)
  t.equal(await s.stop(), 0, 'clean shutdown')

  // Progress is logged about once a second; here every segment, so a short replay shows it too.
  const again = await startServer({ spool: s.spool, config, env: { STARLING_REPLAY_PROGRESS_MS: '0' } })
  t.teardown(() => void again.stop())
  const progress = again.logs.filter((l) => l['msg'] === 'replaying journal')
  t.ok(progress.length >= 2, `replay progress logged (${progress.length} lines)`)
  t.ok(Number(progress.at(-1)?.['records']) > Number(progress[0]?.['records']), 'progress advances')
  const done = again.logs.find((l) => l['msg'] === 'replay complete')
  t.ok(done, 'replay reported')
  t.equal(done!['items'], N, 'every item replayed')
  const rssReplayed = rssMiB(again.proc.pid!)
  t.comment(`replay ${String(done!['durationMs'])} ms; RSS after replay ${rssReplayed.toFixed(0)} MiB`)
  t.ok(rssReplayed < 200, `RSS after replay ${rssReplayed.toFixed(0)} MiB`)

  // The head, in order per producer stream (the streams interleave), nothing missing at the start.
  const SAMPLE = Math.min(N, 200_000)
  const got = await drain(again.port, SAMPLE)
  const last = new Map<string, number>()
  let misordered = 0
  let empty = 0
  for (const tag of got) {
    if (tag === null) {
      empty++
      continue
    }
    const [c, i] = tag.split(':') as [string, string]
    const n = Number(i)
    if ((last.get(c) ?? Number(c) * per - 1) !== n - 1) misordered++
    last.set(c, n)
  }
  t.equal(empty, 0, 'no empty replies while items are queued')
  t.equal(misordered, 0, `${SAMPLE} items from the head: each stream in order, none skipped`)
})
