/**
 * Latency histogram in microseconds with ~1% relative precision (log buckets), mergeable across
 * workers by adding counts. Range 1 µs .. ~100 s; larger values land in the last bucket.
 */
const GROWTH = 1.01
const LOG_GROWTH = Math.log(GROWTH)
export const BUCKETS = 1900

export function newHistogram(): Float64Array {
  return new Float64Array(BUCKETS)
}

export function record(h: Float64Array, micros: number): void {
  const idx = micros <= 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(micros) / LOG_GROWTH))
  h[idx]! += 1
}

export function merge(into: Float64Array, from: ArrayLike<number>): void {
  for (let i = 0; i < BUCKETS; i++) into[i]! += from[i] ?? 0
}

export function count(h: Float64Array): number {
  let n = 0
  for (let i = 0; i < BUCKETS; i++) n += h[i]!
  return n
}

/** The value (µs, bucket upper bound) at quantile q in [0,1]; NaN when empty. */
export function quantile(h: Float64Array, q: number): number {
  const total = count(h)
  if (total === 0) return NaN
  const target = Math.max(1, Math.ceil(total * q))
  let seen = 0
  for (let i = 0; i < BUCKETS; i++) {
    seen += h[i]!
    if (seen >= target) return Math.pow(GROWTH, i)
  }
  return Math.pow(GROWTH, BUCKETS - 1)
}

export interface Percentiles {
  count: number
  p50Ms: number
  p99Ms: number
  p999Ms: number
  maxMs: number
}

export function percentiles(h: Float64Array): Percentiles | null {
  const n = count(h)
  if (n === 0) return null
  let max = 0
  for (let i = BUCKETS - 1; i >= 0; i--) {
    if (h[i]! > 0) {
      max = Math.pow(GROWTH, i)
      break
    }
  }
  const ms = (us: number): number => Math.round(us) / 1000
  return { count: n, p50Ms: ms(quantile(h, 0.5)), p99Ms: ms(quantile(h, 0.99)), p999Ms: ms(quantile(h, 0.999)), maxMs: ms(max) }
}
