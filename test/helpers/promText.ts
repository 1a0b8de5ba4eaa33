/**
 * A strict parser of the Prometheus text exposition format (version 0.0.4), for tests: every line
 * must be a well-formed `# HELP`, `# TYPE`, comment, or sample; every sample must follow its
 * family's TYPE (prom-client always writes one); label values are unescaped; histograms must have
 * cumulative buckets ending in `+Inf`, whose count equals `_count`. Anything else throws, with the
 * line number.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped'

export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

export interface Family {
  name: string
  type: MetricType
  help: string
  samples: Sample[]
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const TYPES = new Set<MetricType>(['counter', 'gauge', 'histogram', 'summary', 'untyped'])

function parseValue(text: string, line: number): number {
  // Prometheus reads values with Go's ParseFloat: Inf and NaN in any case (prom-client writes `Nan`,
  // e.g. for the event-loop lag before its first sample).
  if (/^\+?inf$/i.test(text)) return Infinity
  if (/^-inf$/i.test(text)) return -Infinity
  if (/^nan$/i.test(text)) return NaN
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`line ${line}: bad value ${JSON.stringify(text)}`)
  return Number(text)
}

/** Parse `{a="x",b="y"}` starting at `s[i] === '{'`; returns the labels and the index after `}`. */
function parseLabels(s: string, i: number, line: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {}
  i++ // {
  for (;;) {
    if (s[i] === '}') return { labels, end: i + 1 }
    const eq = s.indexOf('=', i)
    if (eq < 0) throw new Error(`line ${line}: label without =`)
    const name = s.slice(i, eq)
    if (!LABEL_NAME.test(name)) throw new Error(`line ${line}: bad label name ${JSON.stringify(name)}`)
    if (name in labels) throw new Error(`line ${line}: repeated label ${name}`)
    if (s[eq + 1] !== '"') throw new Error(`line ${line}: label value must be quoted`)
    let j = eq + 2
    let value = ''
    for (;;) {
      const c = s[j]
      if (c === undefined) throw new Error(`line ${line}: unterminated label value`)
      if (c === '"') break
      if (c === '\\') {
        const n = s[j + 1]
        if (n === 'n') value += '\n'
        else if (n === '\\' || n === '"') value += n
        else throw new Error(`line ${line}: bad escape \\${n}`)
        j += 2
        continue
      }
      value += c
      j++
    }
    labels[name] = value
    i = j + 1
    if (s[i] === ',') i++
    else if (s[i] !== '}') throw new Error(`line ${line}: expected , or } after a label`)
  }
}

/** The family a sample belongs to: histogram/summary samples carry suffixes. */
function familyOf(sample: string, families: Map<string, Family>): Family | undefined {
  const direct = families.get(sample)
  if (direct) return direct
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!sample.endsWith(suffix)) continue
    const f = families.get(sample.slice(0, -suffix.length))
    if (f && (f.type === 'histogram' || (f.type === 'summary' && suffix !== '_bucket'))) return f
  }
  return undefined
}

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>()
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline')
  const lines = text.split('\n')
  lines.pop()
  lines.forEach((raw, index) => {
    const line = index + 1
    if (raw.trim() === '') return
    if (raw.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(raw)
      if (!m) return // a plain comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string]
      if (!NAME.test(name)) throw new Error(`line ${line}: bad metric name ${name}`)
      let f = families.get(name)
      if (!f) families.set(name, (f = { name, type: 'untyped', help: '', samples: [] }))
      if (kind === 'TYPE') {
        if (!TYPES.has(rest as MetricType)) throw new Error(`line ${line}: bad type ${rest}`)
        if (f.samples.length > 0) throw new Error(`line ${line}: TYPE after samples of ${name}`)
        f.type = rest as MetricType
      } else {
        f.help = rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\')
      }
      return
    }
    const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(raw)
    if (!nameMatch) throw new Error(`line ${line}: bad sample ${JSON.stringify(raw)}`)
    const name = nameMatch[0]
    let i = name.length
    let labels: Record<string, string> = {}
    if (raw[i] === '{') ({ labels, end: i } = parseLabels(raw, i, line))
    if (raw[i] !== ' ') throw new Error(`line ${line}: expected a space before the value`)
    const parts = raw.slice(i + 1).split(' ')
    if (parts.length > 2) throw new Error(`line ${line}: trailing garbage`)
    const value = parseValue(parts[0]!, line)
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) throw new Error(`line ${line}: bad timestamp`)
    const family = familyOf(name, families)
    if (!family) throw new Error(`line ${line}: sample ${name} has no TYPE`)
    family.samples.push({ name, labels, value })
  })
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f)
  return families
}

function checkHistogram(f: Family): void {
  const series = new Map<string, Sample[]>()
  for (const s of f.samples) {
    if (s.name !== `${f.name}_bucket`) continue
    const { le, ...rest } = s.labels
    if (le === undefined) throw new Error(`${f.name}: bucket without le`)
    const key = JSON.stringify(rest)
    series.set(key, [...(series.get(key) ?? []), s])
  }
  for (const [key, buckets] of series) {
    let prevLe = -Infinity
    let prevCount = 0
    for (const b of buckets) {
      const le = parseValue(b.labels.le!, 0)
      if (!(le > prevLe)) throw new Error(`${f.name}${key}: buckets not in increasing le order`)
      if (b.value < prevCount) throw new Error(`${f.name}${key}: bucket counts not cumulative`)
      prevLe = le
      prevCount = b.value
    }
    if (prevLe !== Infinity) throw new Error(`${f.name}${key}: no +Inf bucket`)
    const count = f.samples.find((s) => s.name === `${f.name}_count` && JSON.stringify(s.labels) === key)
    if (!count || count.value !== prevCount) throw new Error(`${f.name}${key}: _count disagrees with the +Inf bucket`)
  }
}

/** The value of one sample: family name (or suffixed name) and exact labels; undefined if absent. */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = JSON.stringify(Object.entries(labels).sort())
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want) return s.value
    }
  }
  return undefined
}
