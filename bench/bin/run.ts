/**
 * `npm run bench`: starts each peer, runs every workload against it, stops it, and writes
 * bench/results/<stamp>.json and .md (the table is printed too). Exits 1 if any lost, duplicated,
 * corrupt or out-of-order item was seen, or a run failed; 2 on bad usage or when nothing could run.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseOptions, type BenchOptions } from '../harness/options.js'
import { killAllPeersSync, PEERS, peerAvailable, peerSelected, ROOT, type PeerDef } from '../harness/peers.js'
import { WorkerPool } from '../harness/pool.js'
import { summariseProfile, type SelfTime } from '../harness/profile.js'
import { renderMarkdown, type RunInfo } from '../harness/report.js'
import {
  correctnessFailed,
  emptyCorrectness,
  fmtCount,
  fmtLatency,
  type RunContext,
  type WorkloadResult,
} from '../workloads/common.js'
import { WORKLOADS } from '../workloads/index.js'

function log(line: string): void {
  console.log(line)
}

function peerVersion(def: PeerDef): string {
  const args: Record<string, [string, string[]]> = {
    memcached: ['memcached', ['-V']],
    'redis-everysec': ['redis-server', ['--version']],
    'redis-always': ['redis-server', ['--version']],
    beanstalkd: ['beanstalkd', ['-v']],
    'beanstalkd-f0': ['beanstalkd', ['-v']],
  }
  const cmd = args[def.name]
  if (!cmd) return ''
  try {
    const line = execFileSync(cmd[0], cmd[1], { timeout: 5000, encoding: 'utf8' }).trim().split('\n')[0]!
    return line.replace(/ sha=.*$/, '').slice(0, 60)
  } catch {
    return ''
  }
}

function summaryLine(r: WorkloadResult): string {
  const m = r.metrics
  const parts: string[] = []
  for (const key of ['fillPerSec', 'drainPerSec', 'producedPerSec', 'consumedPerSec', 'deliveredPerSec', 'replayPerSec']) {
    if (m[key] !== undefined) parts.push(`${key.replace('PerSec', '')} ${fmtCount(m[key])}/s`)
  }
  for (const [name, p] of Object.entries(r.latency)) if (p) parts.push(`${name} ${fmtLatency(p)} ms`)
  const c = r.correctness
  parts.push(`lost/dup/corrupt/ooo ${c.lost}/${c.duplicated}/${c.corrupt}/${c.outOfOrder}`)
  parts.push(`gen CPU ${r.generatorCpuPct.toFixed(0)}%, server CPU ${r.serverCpuPct.toFixed(0)}%`)
  if (m.putErrors || m.takeErrors) parts.push(`errors put ${m.putErrors} take ${m.takeErrors}`)
  return `  ${r.peer} (${(m.elapsedSeconds ?? 0).toFixed(1)} s): ${r.status === 'ok' ? '' : `FAILED (${r.error}) `}${parts.join('; ')}`
}

function findProfile(dir: string): string | null {
  try {
    const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))
    return files.length > 0 ? join(dir, files[0]!) : null
  } catch {
    return null
  }
}

async function main(): Promise<number> {
  let options: BenchOptions
  try {
    options = parseOptions(process.argv.slice(2))
  } catch (err) {
    console.error((err as Error).message)
    return 2
  }
  const started = performance.now()
  const startedAt = new Date()
  const cpuStart = process.cpuUsage()
  const known = new Set(PEERS.flatMap((p) => [p.name, p.name.split('-')[0]!]))
  for (const name of options.only ?? []) {
    if (!known.has(name)) {
      console.error(`unknown peer ${name}; known: ${PEERS.map((p) => p.name).join(' ')}`)
      return 2
    }
  }
  for (const name of options.workloads ?? []) {
    if (!WORKLOADS.some((w) => w.name === name)) {
      console.error(`unknown workload ${name}; known: ${WORKLOADS.map((w) => w.name).join(' ')}`)
      return 2
    }
  }
  const skipped: string[] = []
  const peers = PEERS.filter((p) => peerSelected(p, options.only)).filter((p) => {
    if (peerAvailable(p)) return true
    const why = p.isOurs ? `${p.program} not built (npm run build)` : `${p.program} not installed`
    skipped.push(`${p.name}: ${why}`)
    log(`skipping ${p.name}: ${why}`)
    return false
  })
  if (peers.length === 0) {
    console.error('no peer to benchmark')
    return 2
  }
  const workloads = WORKLOADS.filter((w) => options.workloads === null || options.workloads.includes(w.name))
  const profileDir = options.cpuProf ? mkdtempSync(join(tmpdir(), 'bench-cpuprof-')) : null
  if (profileDir) process.on('exit', () => rmSync(profileDir, { recursive: true, force: true }))
  const pool = new WorkerPool(options.threads)
  const results: WorkloadResult[] = []
  log(`bench (${options.quick ? 'quick' : 'full'}): peers ${peers.map((p) => p.name).join(', ')}; ${options.threads} generator threads`)
  try {
    for (const w of workloads) {
      const applicable = peers.filter((p) => w.appliesTo(p))
      if (applicable.length === 0) continue
      log(`\n${w.title}: ${w.describe(options)}`)
      for (const peer of applicable) {
        const ctx: RunContext = {
          options,
          pool,
          peer,
          log,
          profileArgs: () => (profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []),
          earlier: (workload, peerName) =>
            results.find((r) => r.workload === workload && r.peer === peerName && r.status === 'ok'),
        }
        let r: WorkloadResult
        const runStarted = performance.now()
        try {
          r = await w.run(ctx)
        } catch (err) {
          r = {
            workload: w.name,
            peer: peer.name,
            status: 'failed',
            error: (err as Error).message.split('\n')[0],
            metrics: {},
            latency: {},
            correctness: emptyCorrectness(),
            generatorCpuPct: 0,
            serverCpuPct: 0,
            errors: [(err as Error).message],
          }
        }
        r.metrics.elapsedSeconds = (performance.now() - runStarted) / 1000
        results.push(r)
        log(summaryLine(r))
        if (r.errors.length > 0) log(`    first errors: ${r.errors.slice(0, 3).join(' | ')}`)
      }
    }
  } finally {
    await pool.close()
  }

  let profile: SelfTime[] | null = null
  const profileFile = profileDir ? findProfile(profileDir) : null
  if (profileFile) {
    try {
      profile = summariseProfile(profileFile, ROOT)
    } catch (err) {
      log(`could not read the CPU profile: ${(err as Error).message}`)
    }
  }

  const wallSeconds = (performance.now() - started) / 1000
  const cpu = process.cpuUsage(cpuStart)
  const stamp = startedAt.toISOString().slice(0, 16).replace(':', '-') + (options.quick ? '-quick' : '')
  const info: RunInfo = {
    stamp,
    mode: options.quick ? 'quick' : 'full',
    machine: `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}`,
    node: process.version,
    threads: options.threads,
    peerVersions: Object.fromEntries(peers.map((p) => [p.name, peerVersion(p)])),
    skipped,
    generatorCpuPct: ((cpu.user + cpu.system) / 1e6 / wallSeconds) * 100,
    wallSeconds,
  }
  const markdown = renderMarkdown(info, workloads, results, peers, (w) => w.describe(options), profile)
  log('\n' + markdown)
  if (options.write) {
    // Only full runs belong in the repository; quick (CI smoke) runs go to the temp dir.
    const dir = options.quick ? join(tmpdir(), 'starling-bench-results') : join(ROOT, 'bench', 'results')
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, `${stamp}.json`), JSON.stringify({ info, sizes: options.sizes, results, profile }, null, 2) + '\n')
    writeFileSync(join(dir, `${stamp}.md`), markdown)
    log(`wrote ${join(dir, stamp)}.json and .md`)
  }
  const bad = results.filter((r) => r.status !== 'ok' || correctnessFailed(r.correctness))
  if (bad.length > 0) {
    log(`FAILED: ${bad.map((r) => `${r.workload}/${r.peer}`).join(', ')}`)
    return 1
  }
  return 0
}

process.on('exit', killAllPeersSync)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping peers`)
    killAllPeersSync()
    process.exit(130)
  })
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(err.stack ?? err.message)
    killAllPeersSync()
    process.exit(1)
  },
)
