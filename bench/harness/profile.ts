/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per function, heaviest first.
 */
import { readFileSync } from 'node:fs'
import { relative } from 'node:path'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
  children?: number[]
}

interface CpuProfile {
  nodes: ProfileNode[]
  samples?: number[]
  timeDeltas?: number[]
  startTime: number
  endTime: number
}

export interface SelfTime {
  fn: string
  location: string
  selfMs: number
  pct: number
}

export function summariseProfile(file: string, root: string, top = 15): SelfTime[] {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byNode = new Map<number, ProfileNode>(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const where = (node: ProfileNode): string => {
    const { url, lineNumber } = node.callFrame
    return url ? `${url.startsWith('file://') ? relative(root, new URL(url).pathname) : url}:${lineNumber + 1}` : ''
  }
  // A native function (a syscall binding such as writeBuffer) is named after its nearest JS caller
  // outside node's own stream plumbing, so socket writes and file writes are told apart.
  const caller = (id: number): string => {
    let p = parent.get(id)
    for (let depth = 0; p !== undefined && depth < 12; depth++) {
      const node = byNode.get(p)!
      const url = node.callFrame.url
      if (url && !url.startsWith('node:internal/streams') && !url.startsWith('node:internal/stream_base')) {
        return `${node.callFrame.functionName || '(anonymous)'} ${where(node)}`
      }
      p = parent.get(p)
    }
    return ''
  }
  const selfUs = new Map<number, number>()
  const samples = profile.samples ?? []
  const deltas = profile.timeDeltas ?? []
  // Each sample's time is the delta to the next sample.
  for (let i = 0; i < samples.length; i++) {
    const dt = deltas[i + 1] ?? 0
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + dt)
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0) || 1
  const byFunction = new Map<string, SelfTime>()
  for (const [id, us] of selfUs) {
    const node = byNode.get(id)
    if (!node) continue
    const { functionName, url } = node.callFrame
    const fn = functionName || (url ? '(anonymous)' : '(native)')
    const isSpecial = fn.startsWith('(')
    const location = url ? where(node) : isSpecial ? '' : `native, called from ${caller(id)}`
    const key = `${fn} ${location}`
    const entry = byFunction.get(key) ?? { fn, location, selfMs: 0, pct: 0 }
    entry.selfMs += us / 1000
    byFunction.set(key, entry)
  }
  return [...byFunction.values()]
    .map((e) => ({ ...e, selfMs: Math.round(e.selfMs), pct: Math.round((e.selfMs * 1000 * 1000) / total) / 10 }))
    .sort((a, b) => b.selfMs - a.selfMs)
    .slice(0, top)
}
