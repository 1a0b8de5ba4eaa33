/**
 * How values become bytes. The memcached `flags` field of each item records the serializer that
 * wrote it, so producers using different serializers (or other languages) can share a queue and a
 * reader decodes each item by its own flags:
 *
 * | serializer | flags (decimal) | flags (hex)  | value written            | value read     |
 * |------------|-----------------|--------------|--------------------------|----------------|
 * | `raw`      | 0               | 0x00000000   | Buffer / Uint8Array / string (UTF-8) | Buffer |
 * | `json`     | 1246973774      | 0x4A534F4E ("JSON") | anything JSON.stringify takes | parsed value |
 * | `yaml`     | 1497451852      | 0x59414D4C ("YAML") | anything js-yaml dumps        | parsed value |
 *
 * The non-zero flags spell their name in ASCII so they cannot be mistaken for the small numbers
 * other clients use (dalli 0x1/0x2, pymemcache 0–4, php-memcached 0–6). Flags 0 — what any plain
 * memcached client writes — read as `raw`; so do unknown flags.
 */
import { dump, load } from 'js-yaml'
import { StarlingClientError } from './errors.js'

export interface Serializer {
  readonly name: string
  /** Stored in the item's memcached flags; unique per serializer. */
  readonly flags: number
  encode(value: unknown): Buffer
  decode(data: Buffer): unknown
}

export type SerializerName = 'raw' | 'json' | 'yaml'

export const SERIALIZER_FLAGS = Object.freeze({ raw: 0, json: 0x4a534f4e, yaml: 0x59414d4c })

export const raw: Serializer = {
  name: 'raw',
  flags: SERIALIZER_FLAGS.raw,
  encode(value) {
    if (Buffer.isBuffer(value)) return value
    if (typeof value === 'string') return Buffer.from(value, 'utf8')
    if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength)
    throw new StarlingClientError('BAD_VALUE', `the raw serializer takes a Buffer, Uint8Array or string, not ${typeof value}`)
  },
  // A copy, so the value does not pin the socket's read buffer.
  decode: (data) => Buffer.from(data),
}

export const json: Serializer = {
  name: 'json',
  flags: SERIALIZER_FLAGS.json,
  encode(value) {
    const text = JSON.stringify(value)
    if (text === undefined) throw new StarlingClientError('BAD_VALUE', `${typeof value} cannot be serialized as JSON`)
    return Buffer.from(text, 'utf8')
  },
  decode: (data) => JSON.parse(data.toString('utf8')) as unknown,
}

export const yaml: Serializer = {
  name: 'yaml',
  flags: SERIALIZER_FLAGS.yaml,
  encode: (value) => Buffer.from(dump(value), 'utf8'),
  decode: (data) => load(data.toString('utf8')),
}

/** The serializers a client knows, by name (for writing) and by flags (for reading). */
export class SerializerRegistry {
  private readonly byName = new Map<string, Serializer>()
  private readonly byFlags = new Map<number, Serializer>()

  constructor(extra: readonly Serializer[] = []) {
    for (const s of [raw, json, yaml, ...extra]) this.add(s)
  }

  add(serializer: Serializer): void {
    const clash = this.byFlags.get(serializer.flags)
    if (clash !== undefined && clash.name !== serializer.name) {
      throw new StarlingClientError('BAD_OPTION', `serializers ${clash.name} and ${serializer.name} share flags ${serializer.flags}`)
    }
    this.byName.set(serializer.name, serializer)
    this.byFlags.set(serializer.flags, serializer)
  }

  resolve(choice: SerializerName | Serializer | string): Serializer {
    if (typeof choice !== 'string') return choice
    const s = this.byName.get(choice)
    if (s === undefined) throw new StarlingClientError('BAD_OPTION', `unknown serializer ${JSON.stringify(choice)}`)
    return s
  }

  /** The serializer that wrote an item with these flags; raw when unknown. */
  forFlags(flags: number): Serializer {
    return this.byFlags.get(flags) ?? raw
  }

  /** Decode with `forced`, or by the item's flags. Errors become DECODE errors carrying the bytes. */
  decode(data: Buffer, flags: number, forced: Serializer | undefined): unknown {
    const serializer = forced ?? this.forFlags(flags)
    try {
      return serializer.decode(data)
    } catch (err) {
      const e = new StarlingClientError('DECODE', `cannot decode item (flags ${flags}) as ${serializer.name}: ${(err as Error).message}`, { cause: err })
      Object.defineProperty(e, 'data', { value: Buffer.from(data), enumerable: true })
      throw e
    }
  }
}
