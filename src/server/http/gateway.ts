/**
 * The HTTP gateway: a sibling of the memcached protocols over the same dispatcher. It serves the
 * queue routes (routes.ts), Prometheus metrics (metrics.ts), the dashboard (dashboardPage.ts) and
 * /healthz, over HTTP or HTTPS (the certificate of `tls:`), with HTTP Basic when `auth.users` is
 * set. It listens before the spool is replayed so that /healthz can answer 503 meanwhile; queue
 * routes answer 503 until the queues are loaded.
 *
 * A slow or hostile client holds bounded memory: request headers and the whole request must arrive
 * within their timeouts (Node answers 408), a body is refused past `max_item_size` (413), and open
 * reads are capped per user (429).
 */
import { createHash } from 'node:crypto'
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer, type ServerOptions as HttpsOptions } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import type { AuthConfig, HttpConfig } from '../config.js'
import type { Dispatcher } from '../dispatcher.js'
import type { QueueCollection } from '../engine/queueCollection.js'
import { ConfigError } from '../errors.js'
import type { Logger } from '../logger.js'
import { BasicAuth } from './auth.js'
import { DASHBOARD_SCRIPT, DASHBOARD_STYLE, dashboardHtml } from './dashboardPage.js'
import { Metrics } from './metrics.js'
import { ReceiptBook } from './receipts.js'
import { HttpError, sendText } from './request.js'
import { serveQueues, type QueueRoutesContext } from './routes.js'

export interface GatewayOptions {
  http: HttpConfig
  /** Listen address when `http.host` is not set. */
  defaultHost: string
  /** Certificate and key when `http.tls` is on. */
  tls: { cert: Buffer; key: Buffer } | null
  auth: AuthConfig | null
  maxItemSize: number
  maxKeyLength: number
  maxConnections: number
  dispatcher: Dispatcher
  collection: QueueCollection
  /** Open memcached connections by protocol, read at scrape time. */
  memcachedConnections(): Record<string, number>
  log: Logger
}

/** Node checks the header and request timeouts this often (its default, 30 s, is too coarse). */
const TIMEOUT_CHECK_MS = 1000

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`

/** The page runs only its own inline script and style, and talks only to this server. */
const DASHBOARD_CSP = [
  "default-src 'none'",
  "connect-src 'self'",
  'img-src data:',
  `style-src ${sha256(DASHBOARD_STYLE)}`,
  `script-src ${sha256(DASHBOARD_SCRIPT)}`,
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ')

export class HttpGateway {
  private readonly server: Server
  private readonly auth: BasicAuth
  private readonly receipts: ReceiptBook
  private readonly metrics: Metrics
  private readonly routes: QueueRoutesContext
  private readonly sockets = new Set<Socket>()
  private readonly page = Buffer.from(dashboardHtml())
  private ready = false

  constructor(private readonly o: GatewayOptions) {
    const h = o.http
    this.auth = new BasicAuth(o.auth)
    this.receipts = new ReceiptBook(h.openTimeoutMs, h.maxOpenReceipts)
    this.metrics = new Metrics({
      collection: o.collection,
      connections: () => ({ ...o.memcachedConnections(), http: this.sockets.size }),
    })
    this.routes = {
      dispatcher: o.dispatcher,
      collection: o.collection,
      receipts: this.receipts,
      maxItemSize: o.maxItemSize,
      maxKeyLength: o.maxKeyLength,
    }
    const options = {
      headersTimeout: h.headerTimeoutMs,
      requestTimeout: Math.max(h.maxBodyWaitMs, h.headerTimeoutMs),
      keepAliveTimeout: h.keepAliveTimeoutMs,
      connectionsCheckingInterval: TIMEOUT_CHECK_MS,
    }
    const handler = (req: IncomingMessage, res: ServerResponse): void => this.handle(req, res)
    if (h.tls) {
      if (!o.tls) throw new ConfigError('config key starling.http.tls needs starling.tls (its certificate)')
      const tlsOptions: HttpsOptions = { ...options, cert: o.tls.cert, key: o.tls.key }
      this.server = createHttpsServer(tlsOptions, handler)
    } else {
      this.server = createHttpServer(options, handler)
    }
    this.server.maxConnections = o.maxConnections
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket)
      socket.once('close', () => this.sockets.delete(socket))
    })
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      o.log.debug({ err: err.code ?? err.message }, 'bad HTTP request')
      if (socket.writable && err.code !== 'ECONNRESET') {
        const status =
          err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout'
          : err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large'
          : '400 Bad Request'
        socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
      } else {
        socket.destroy()
      }
    })
  }

  /** Listen; resolves with the bound port. */
  listen(): Promise<number> {
    const host = this.o.http.host ?? this.o.defaultHost
    const port = this.o.http.port
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(new ConfigError(`cannot listen for HTTP on ${host}:${port}: ${err.code ?? err.message}`))
      }
      this.server.once('error', onError)
      this.server.listen(port, host, () => {
        this.server.off('error', onError)
        resolve((this.server.address() as AddressInfo).port)
      })
    })
  }

  /** The spool is replayed: serve the queues, /healthz answers 200. */
  markReady(): void {
    this.ready = true
  }

  /**
   * Stop accepting and drop idle keep-alive connections; open reads not confirmed go back to their
   * queues. Resolves when every connection has ended (see `destroyConnections`).
   */
  close(): Promise<void> {
    this.ready = false
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    this.server.closeIdleConnections()
    this.receipts.closeAll()
    this.metrics.close()
    return closed
  }

  /** The last step of a shutdown: drop whoever is still connected. */
  destroyConnections(): void {
    this.server.closeAllConnections()
    for (const socket of this.sockets) socket.destroy()
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const method = req.method ?? 'GET'
    let url: URL
    try {
      url = new URL(req.url ?? '/', 'http://starling')
    } catch {
      return sendText(res, 400, 'bad request target')
    }
    const path = url.pathname
    const segments = path.split('/').slice(1)
    const route = routeName(segments)
    res.once('finish', () => this.metrics.countRequest(method, route, res.statusCode))

    if (path === '/healthz') {
      return this.ready ? sendText(res, 200, 'ok') : sendText(res, 503, 'replaying the spool')
    }
    this.auth.userOf(req.headers.authorization, (user) => this.serveAuthorized(req, res, url, segments, method, user))
  }

  private serveAuthorized(req: IncomingMessage, res: ServerResponse, url: URL, segments: string[], method: string, user: string | null): void {
    const path = url.pathname
    if (user === null) {
      return sendText(res, 401, 'authentication required', { 'WWW-Authenticate': 'Basic realm="starling", charset="UTF-8"' })
    }
    if (segments[0] === 'queues') {
      if (!this.ready) return sendText(res, 503, 'replaying the spool', { 'Retry-After': '1' })
      const rest = segments.slice(1)
      if (rest[rest.length - 1] === '') rest.pop() // a trailing slash
      serveQueues(this.routes, req, res, url, rest, user).catch((err: unknown) => this.fail(res, err))
      return
    }
    if (path !== '/' && path !== '/metrics') return sendText(res, 404, 'no such route')
    if (method !== 'GET' && method !== 'HEAD') return sendText(res, 405, 'use GET', { Allow: 'GET' })
    if (path === '/') return this.serveDashboard(res)
    this.metrics.render().then(
      ({ contentType, body }) => sendText(res, 200, body.trimEnd(), { 'Content-Type': contentType }),
      (err: unknown) => this.fail(res, err),
    )
  }

  private serveDashboard(res: ServerResponse): void {
    res.writeHead(200, {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Length': this.page.length,
      'Content-Security-Policy': DASHBOARD_CSP,
      'Cache-Control': 'no-cache',
      'X-Content-Type-Options': 'nosniff',
    })
    res.end(this.page)
  }

  private fail(res: ServerResponse, err: unknown): void {
    if (err instanceof HttpError) return sendText(res, err.status, err.message, err.headers)
    if (res.destroyed) return // the client went away mid-request (an aborted upload): nothing to say
    this.o.log.error({ err: (err as Error).message }, 'HTTP request failed')
    sendText(res, 500, 'internal error')
  }
}

/** The route pattern of a path, for metrics labels (bounded: never the queue name). */
function routeName(segments: string[]): string {
  if (segments.length === 1 && ['', 'healthz', 'metrics', 'queues'].includes(segments[0]!)) return `/${segments[0]}`
  if (segments[0] === 'queues' && segments.length === 2) return '/queues/:q'
  if (segments[0] === 'queues' && segments.length === 3 && ['peek', 'open', 'close', 'abort'].includes(segments[2]!)) {
    return `/queues/:q/${segments[2]}`
  }
  return 'other'
}
