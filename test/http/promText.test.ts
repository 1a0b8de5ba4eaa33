/**
 * The test-side Prometheus text parser is strict: it reads a well-formed exposition (escapes,
 * histograms, timestamps) and throws on every malformed one, so the metrics test can fail.
 */
import t from 'tap'
import { parsePrometheusText, sampleValue } from '../helpers/promText.js'

const GOOD = `# HELP q_items Items.
# TYPE q_items gauge
q_items{queue="a\\"b\\\\c\\nd"} 3
q_items{queue="plain"} 0 1700000000000
# a comment line
# TYPE lat_seconds histogram
lat_seconds_bucket{le="0.1"} 1
lat_seconds_bucket{le="1"} 4
lat_seconds_bucket{le="+Inf"} 5
lat_seconds_sum 2.5e0
lat_seconds_count 5
# TYPE up_total counter
up_total 1
`

t.test('a well-formed exposition', async (t) => {
  const m = parsePrometheusText(GOOD)
  t.equal(m.get('q_items')?.type, 'gauge')
  t.equal(m.get('q_items')?.help, 'Items.')
  t.equal(sampleValue(m, 'q_items', { queue: 'a"b\\c\nd' }), 3, 'label escapes are decoded')
  t.equal(sampleValue(m, 'q_items', { queue: 'plain' }), 0)
  t.equal(sampleValue(m, 'lat_seconds_count'), 5)
  t.equal(sampleValue(m, 'lat_seconds_bucket', { le: '+Inf' }), 5)
  t.equal(sampleValue(m, 'lat_seconds_sum'), 2.5)
  t.equal(sampleValue(m, 'q_items', { queue: 'other' }), undefined)
})

t.test('malformed expositions are refused', async (t) => {
  const bad: Array<[string, string]> = [
    ['no trailing newline', '# TYPE a gauge\na 1'],
    ['sample without TYPE', 'a 1\n'],
    ['bad value', '# TYPE a gauge\na one\n'],
    ['no space before value', '# TYPE a gauge\na{x="1"}1\n'],
    ['unquoted label', '# TYPE a gauge\na{x=1} 1\n'],
    ['unterminated label value', '# TYPE a gauge\na{x="1} 1\n'],
    ['bad escape', '# TYPE a gauge\na{x="\\t"} 1\n'],
    ['repeated label', '# TYPE a gauge\na{x="1",x="2"} 1\n'],
    ['bad label name', '# TYPE a gauge\na{1x="1"} 1\n'],
    ['trailing garbage', '# TYPE a gauge\na 1 2 3\n'],
    ['bad timestamp', '# TYPE a gauge\na 1 soon\n'],
    ['unknown type', '# TYPE a meter\na 1\n'],
    ['TYPE after samples', '# TYPE a gauge\na 1\n# TYPE a counter\n'],
    ['buckets not cumulative', '# TYPE h histogram\nh_bucket{le="1"} 3\nh_bucket{le="+Inf"} 2\nh_count 2\nh_sum 1\n'],
    ['no +Inf bucket', '# TYPE h histogram\nh_bucket{le="1"} 3\nh_count 3\nh_sum 1\n'],
    ['count disagrees', '# TYPE h histogram\nh_bucket{le="+Inf"} 3\nh_count 4\nh_sum 1\n'],
    ['le out of order', '# TYPE h histogram\nh_bucket{le="2"} 1\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_count 1\nh_sum 1\n'],
  ]
  for (const [why, text] of bad) t.throws(() => parsePrometheusText(text), why)
})
