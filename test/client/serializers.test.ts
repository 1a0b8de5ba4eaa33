import t from 'tap'
import { SERIALIZER_FLAGS, SerializerRegistry, json, raw, yaml, type Serializer } from '../../src/client/serializers.js'

t.test('flags are distinct and documented values', async (t) => {
  t.same(SERIALIZER_FLAGS, { raw: 0, json: 0x4a534f4e, yaml: 0x59414d4c })
  t.equal(new Set(Object.values(SERIALIZER_FLAGS)).size, 3)
})

t.test('round trips', async (t) => {
  const value = { id: 7, tags: ['a', 'b'], nested: { ok: true, n: null } }
  t.same(json.decode(json.encode(value)), value)
  t.same(yaml.decode(yaml.encode(value)), value)
  t.same(raw.decode(raw.encode('héllo')), Buffer.from('héllo'))
  t.same(raw.decode(raw.encode(new Uint8Array([1, 2, 3]))), Buffer.from([1, 2, 3]))
  t.throws(() => raw.encode({}), { code: 'BAD_VALUE' })
  t.throws(() => json.encode(undefined), { code: 'BAD_VALUE' })
  t.match(yaml.encode({ a: 1 }).toString(), /^a: 1\n$/)
})

t.test('registry decodes by flags, unknown flags as raw, and wraps decode errors', async (t) => {
  const reg = new SerializerRegistry()
  t.same(reg.decode(Buffer.from('[1]'), SERIALIZER_FLAGS.json, undefined), [1])
  t.same(reg.decode(Buffer.from('- 1\n'), SERIALIZER_FLAGS.yaml, undefined), [1])
  t.same(reg.decode(Buffer.from('[1]'), 77, undefined), Buffer.from('[1]'))
  t.same(reg.decode(Buffer.from('[1]'), SERIALIZER_FLAGS.json, raw), Buffer.from('[1]'))
  const err = t.throws(() => reg.decode(Buffer.from('{nope'), SERIALIZER_FLAGS.json, undefined), { code: 'DECODE' }) as unknown as { data: Buffer }
  t.same(err.data, Buffer.from('{nope'))
  t.throws(() => reg.resolve('xml'), { code: 'BAD_OPTION' })
  const upper: Serializer = { name: 'upper', flags: 99, encode: (v) => Buffer.from(String(v).toUpperCase()), decode: (d) => d.toString() }
  const withUpper = new SerializerRegistry([upper])
  t.equal(withUpper.resolve('upper'), upper)
  t.equal(withUpper.decode(Buffer.from('X'), 99, undefined), 'X')
  t.throws(() => new SerializerRegistry([{ ...upper, name: 'clash', flags: 0 }]), { code: 'BAD_OPTION' })
})
