/** The Markdown report: one table per workload, our server's row as the reference for ratios. */
import type { PeerDef } from './peers.js'
import type { SelfTime } from './profile.js'
import type { Workload, WorkloadResult } from '../workloads/common.js'

export interface RunInfo {
  stamp: string
  mode: 'full' | 'quick'
  machine: string
  node: string
  threads: number
  peerVersions: Record<string, string>
  skipped: string[]
  generatorCpuPct: number
  wallSeconds: number
}

export function renderMarkdown(
  info: RunInfo,
  workloads: Workload[],
  results: WorkloadResult[],
  peers: PeerDef[],
  describe: (w: Workload) => string,
  profile: SelfTime[] | null,
): string {
  const out: string[] = []
  out.push(`# Benchmark ${info.stamp} (${info.mode})`, '')
  out.push(
    `Machine: ${info.machine}; Node ${info.node}; ${info.threads} load-generator threads; ` +
      `run took ${info.wallSeconds.toFixed(0)} s, generator CPU ${info.generatorCpuPct.toFixed(0)}% of one core on average. ` +
      `Everything on 127.0.0.1, peers and generator share the machine: compare ratios within this run.`,
    '',
  )
  out.push(
    'Every item carries producer id, sequence number, send time and a CRC-32; consumers check them. ' +
      '`lost/dup/corrupt/ooo` = acknowledged but never delivered / delivered twice / checksum mismatch / ' +
      'a producer\'s items delivered out of order to one consumer. All must be 0. ' +
      '`gen CPU %` / `server CPU %` = CPU seconds of the load generator (all threads) / of the server, per wall second (100 = one core). ' +
      '`ours ÷ peer` compares the workload\'s key metric (higher is better) with our server\'s row.',
    '',
  )
  for (const w of workloads) {
    const rows = results.filter((r) => r.workload === w.name)
    if (rows.length === 0) continue
    out.push(`## ${w.title}`, '', describe(w), '')
    const ours = rows.find((r) => r.peer.startsWith('ours') && r.status === 'ok')
    const headers = ['peer', ...w.columns.map((c) => c.header), ...(ours && rows.length > 1 ? ['ours ÷ peer'] : [])]
    out.push(`| ${headers.join(' | ')} |`, `|${headers.map(() => '---').join('|')}|`)
    for (const r of rows) {
      const name = r.peer === 'memcached' ? 'memcached (ceiling)' : r.peer
      if (r.status === 'failed' && Object.keys(r.metrics).length === 0) {
        out.push(`| ${name} | failed: ${escape(r.error ?? 'error')} |${' |'.repeat(headers.length - 2)}`)
        continue
      }
      const cells = w.columns.map((c) => c.cell(r))
      if (ours && rows.length > 1) {
        const mine = ours.metrics[w.keyMetric]
        const theirs = r.metrics[w.keyMetric]
        const ratio = mine && theirs ? (w.lowerIsBetter ? theirs / mine : mine / theirs) : undefined
        cells.push(ratio !== undefined ? `${ratio.toFixed(2)}×` : '–')
      }
      out.push(`| ${name}${r.status === 'failed' ? ` (failed: ${escape(r.error ?? 'error')})` : ''} | ${cells.join(' | ')} |`)
    }
    out.push('')
  }
  out.push('## Peers', '')
  for (const p of peers) out.push(`- **${p.name}**: ${p.description}${info.peerVersions[p.name] ? ` (${info.peerVersions[p.name]})` : ''}`)
  for (const s of info.skipped) out.push(`- skipped: ${s}`)
  out.push(
    '',
    'memcached is not a queue: items are distinct keys (`<q>_<producer>_<seq>`), consumer *i* reads producer *i*\'s keys ' +
      'in order with `get` (not deleted). It is the ceiling for the protocol and the generator on this machine, with no ' +
      'queue semantics and no durability. Redis uses RPUSH/LPOP, and LPUSH/BRPOP when consumers block (both FIFO); ' +
      'beanstalkd uses put / reserve-with-timeout / delete (the delete pipelined with the next reserve).',
    '',
  )
  if (profile && profile.length > 0) {
    out.push('## Our server under `node --cpu-prof` (mixed workload): top self time', '')
    out.push('| function | location | self ms | % |', '|---|---|---|---|')
    for (const p of profile) out.push(`| ${escape(p.fn)} | ${escape(p.location)} | ${p.selfMs} | ${p.pct} |`)
    out.push('')
  }
  return out.join('\n')
}

function escape(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ')
}
