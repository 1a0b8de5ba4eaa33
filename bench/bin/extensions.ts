/**
 * Figures for the Kestrel extensions and the transport options, on one server in one run:
 *  - set → blocked waiter latency (p50/p99) over N items (16 consumers parked in `get q/t=1000`,
 *    one producer at a fixed rate; the item carries its send time);
 *  - reliable-read throughput: `get q/close/open` loops versus plain `get` loops, 8 connections;
 *  - TLS overhead: the same pipelined fill and drain over plain TCP and over TLS.
 * Usage: node dist/bench/bin/extensions.js [--items 10000]
 */
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs'
import { connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { OUR_SERVER } from '../harness/peers.js'

const ITEMS = Number(process.argv[process.argv.indexOf('--items') + 1]) || 10_000

/** A connection that sends commands and resolves replies in order (text protocol). */
class Conn {
  private buf: Buffer = Buffer.alloc(0)
  private readonly pending: Array<(reply: Buffer | null) => void> = []
  constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d
      this.drain()
    })
  }
  private drain(): void {
    for (;;) {
      const eol = this.buf.indexOf('\r\n')
      if (eol < 0 || this.pending.length === 0) return
      const line = this.buf.toString('latin1', 0, eol)
      if (line === 'END') {
        this.buf = this.buf.subarray(eol + 2)
        this.pending.shift()!(null)
      } else if (line.startsWith('VALUE ')) {
        const len = Number(line.slice(line.lastIndexOf(' ') + 1))
        const end = eol + 2 + len + 2 + 5
        if (this.buf.length < end) return
        const data = this.buf.subarray(eol + 2, eol + 2 + len)
        this.buf = this.buf.subarray(end)
        this.pending.shift()!(data)
      } else {
        this.buf = this.buf.subarray(eol + 2)
        this.pending.shift()!(Buffer.from(line))
      }
    }
  }
  send(cmd: string | Buffer): Promise<Buffer | null> {
    return new Promise((resolve) => {
      this.pending.push(resolve)
      this.socket.write(cmd)
    })
  }
  close(): void {
    this.socket.destroy()
  }
}

function open(port: number, tls?: { ca: Buffer; port: number }): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const s = tls
      ? tlsConnect({ host: '127.0.0.1', port: tls.port, ca: tls.ca }, () => resolve(new Conn(s)))
      : netConnect(port, '127.0.0.1', () => resolve(new Conn(s)))
    s.setNoDelay(true)
    s.once('error', reject)
  })
}

const setCmd = (q: string, v: Buffer): Buffer => Buffer.concat([Buffer.from(`set ${q} 0 0 ${v.length}\r\n`), v, Buffer.from('\r\n')])

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!
}

async function blockingLatency(port: number): Promise<string> {
  const consumers = await Promise.all(Array.from({ length: 16 }, () => open(port)))
  const latencies: number[] = []
  let received = 0
  const done = new Promise<void>((resolve) => {
    for (const c of consumers) {
      const loop = async (): Promise<void> => {
        while (received < ITEMS) {
          const v = await c.send('get lat/t=1000\r\n')
          if (!v) continue
          latencies.push(Number(process.hrtime.bigint() - BigInt(v.toString('latin1', 0, 20))) / 1e6)
          if (++received === ITEMS) resolve()
        }
      }
      void loop()
    }
  })
  await new Promise((r) => setTimeout(r, 200))
  const producer = await open(port)
  const pad = 'x'.repeat(1000)
  const rate = 2000 // items/s: well below saturation, so this measures wake-up latency
  const started = Date.now()
  for (let i = 0; i < ITEMS; i++) {
    const due = started + (i * 1000) / rate
    const wait = due - Date.now()
    if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    void producer.send(setCmd('lat', Buffer.from(String(process.hrtime.bigint()).padStart(20, '0') + pad)))
  }
  await done
  for (const c of [...consumers, producer]) c.close()
  latencies.sort((a, b) => a - b)
  return `set → blocked waiter, ${ITEMS} items at ${rate}/s, 16 waiters: p50 ${pct(latencies, 50).toFixed(2)} ms, p99 ${pct(latencies, 99).toFixed(2)} ms, max ${latencies.at(-1)!.toFixed(2)} ms`
}

async function fill(port: number, queue: string, n: number, tls?: { ca: Buffer; port: number }): Promise<number> {
  const conns = await Promise.all(Array.from({ length: 8 }, () => open(port, tls)))
  const value = Buffer.alloc(1024, 0x61)
  const t0 = performance.now()
  await Promise.all(
    conns.map(async (c, k) => {
      const mine = Math.ceil(n / 8)
      for (let i = 0; i < mine; i += 16) {
        const batch: Array<Promise<Buffer | null>> = []
        for (let j = 0; j < 16 && i + j < mine && k * mine + i + j < n; j++) batch.push(c.send(setCmd(queue, value)))
        await Promise.all(batch)
      }
    }),
  )
  const ms = performance.now() - t0
  for (const c of conns) c.close()
  return (n / ms) * 1000
}

async function drain(port: number, queue: string, command: string, tls?: { ca: Buffer; port: number }): Promise<number> {
  const conns = await Promise.all(Array.from({ length: 8 }, () => open(port, tls)))
  let got = 0
  const t0 = performance.now()
  await Promise.all(
    conns.map(async (c) => {
      for (;;) {
        const v = await c.send(`get ${queue}${command}\r\n`)
        if (!v) break
        got++
      }
      if (command.includes('open')) await c.send(`get ${queue}/close\r\n`)
    }),
  )
  const ms = performance.now() - t0
  for (const c of conns) c.close()
  return (got / ms) * 1000
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'starling-ext-'))
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'k.pem', '-out', 'c.pem', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { cwd: dir, stdio: 'ignore' })
  writeFileSync(join(dir, 'c.yml'), `starling:\n  tls:\n    port: 0\n    cert: ${join(dir, 'c.pem')}\n    key: ${join(dir, 'k.pem')}\n`)
  const proc = spawn(process.execPath, [OUR_SERVER, '-p', '0', '-q', join(dir, 'spool'), '-f', join(dir, 'c.yml')], { stdio: ['ignore', 'ignore', 'pipe'] })
  const ports = await new Promise<{ port: number; tlsPort: number }>((resolve) => {
    createInterface({ input: proc.stderr! }).on('line', (l) => {
      const e = JSON.parse(l) as { msg: string; port: number; tlsPort: number }
      if (e.msg === 'listening') resolve(e)
    })
  })
  const tls = { ca: readFileSync(join(dir, 'c.pem')), port: ports.tlsPort }
  try {
    console.log(await blockingLatency(ports.port))
    const n = ITEMS * 2
    await fill(ports.port, 'plain', n)
    const plainGet = await drain(ports.port, 'plain', '')
    await fill(ports.port, 'reliable', n)
    const closeOpen = await drain(ports.port, 'reliable', '/close/open')
    console.log(`reliable reads, 8 connections, ${n} items of 1 KiB: plain get ${plainGet.toFixed(0)}/s, get/close/open ${closeOpen.toFixed(0)}/s (${((closeOpen / plainGet) * 100).toFixed(0)}%)`)
    const plainFill = await fill(ports.port, 'tcp', n)
    const plainDrain = await drain(ports.port, 'tcp', '')
    const tlsFill = await fill(ports.port, 'tls', n, tls)
    const tlsDrain = await drain(ports.port, 'tls', '', tls)
    console.log(`TLS overhead, 8 connections x 16 in flight, 1 KiB: set ${plainFill.toFixed(0)}/s plain vs ${tlsFill.toFixed(0)}/s TLS (${((tlsFill / plainFill) * 100).toFixed(0)}%), get ${plainDrain.toFixed(0)}/s plain vs ${tlsDrain.toFixed(0)}/s TLS (${((tlsDrain / plainDrain) * 100).toFixed(0)}%)`)
  } finally {
    proc.kill('SIGTERM')
    await new Promise((r) => proc.once('exit', r))
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
