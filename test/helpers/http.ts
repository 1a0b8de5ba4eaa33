/**
 * Test helper: real HTTP(S) requests to the gateway of a server started by `startServer`, with an
 * optional keep-alive Agent and Basic credentials. Bodies come back as Buffers, byte for byte.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import type { RunningServer } from './server.js'

export interface HttpReply {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  text: string
  /** Whether the request went over a socket used before (keep-alive). */
  reusedSocket: boolean
}

export interface HttpTarget {
  port: number
  host?: string
  /** HTTPS, trusting this CA. */
  ca?: Buffer
  agent?: HttpAgent | HttpsAgent
  /** `user:password` for Basic auth. */
  auth?: string
}

export interface RequestOptions {
  method?: string
  body?: string | Buffer
  headers?: Record<string, string>
  timeoutMs?: number
}

/** The gateway's port, from the server's `listening` log line. */
export function httpPortOf(server: RunningServer): number {
  const line = server.logs.find((l) => l.msg === 'listening')
  const port = line?.httpPort
  if (typeof port !== 'number') throw new Error('the server did not log an httpPort')
  return port
}

export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
}

export function request(target: HttpTarget, path: string, options: RequestOptions = {}): Promise<HttpReply> {
  const headers: Record<string, string> = { ...options.headers }
  if (target.auth !== undefined) {
    const i = target.auth.indexOf(':')
    headers.Authorization = basic(target.auth.slice(0, i), target.auth.slice(i + 1))
  }
  const body = options.body === undefined ? undefined : Buffer.from(options.body)
  if (body) headers['Content-Length'] = String(body.length)
  const send = target.ca ? httpsRequest : httpRequest
  return new Promise((resolve, reject) => {
    const req = send(
      {
        host: target.host ?? '127.0.0.1',
        port: target.port,
        path,
        method: options.method ?? 'GET',
        headers,
        agent: target.agent ?? false,
        ca: target.ca,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          clearTimeout(timer)
          const data = Buffer.concat(chunks)
          resolve({ status: res.statusCode!, headers: res.headers, body: data, text: data.toString('utf8'), reusedSocket: req.reusedSocket })
        })
        res.on('error', reject)
      },
    )
    const timer = setTimeout(() => {
      req.destroy(new Error(`${options.method ?? 'GET'} ${path}: no reply within ${options.timeoutMs ?? 15000} ms`))
    }, options.timeoutMs ?? 15000)
    req.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    req.end(body)
  })
}

/** A keep-alive agent (one socket unless more are needed at once). */
export function keepAliveAgent(maxSockets = 1): HttpAgent {
  return new HttpAgent({ keepAlive: true, maxSockets })
}
