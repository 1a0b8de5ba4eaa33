/**
 * The queue routes: `/queues`, `/queues/<q>`, `/queues/<q>/{peek,open,close,abort}`. Each turns a
 * request into Session calls, as the memcached handlers do, so HTTP readers wait in the same FIFO
 * line as memcached readers and see the same items.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { DeliveredItem, Dispatcher, Session } from '../dispatcher.js'
import type { QueueCollection } from '../engine/queueCollection.js'
import type { StarlingError } from '../errors.js'
import { PLAIN_READ, type QueueReadOptions } from '../engine/requests.js'
import { MAX_WAIT_MS } from '../protocol/keyOptions.js'
import type { ReceiptBook } from './receipts.js'
import {
  HttpError,
  intParam,
  queueNameFrom,
  readBody,
  sendEmpty,
  sendJson,
  sendText,
  statusOf,
  uintParam,
} from './request.js'

export interface QueueRoutesContext {
  dispatcher: Dispatcher
  collection: QueueCollection
  receipts: ReceiptBook
  /** Request body limit: the largest item any queue accepts. */
  maxItemSize: number
  maxKeyLength: number
}

const MAX_U32 = 0xffffffff

export interface QueueRow {
  name: string
  items: number
  bytes: number
  age_ms: number
  open: number
  waiters: number
  total_items: number
  dequeued_items: number
  expired_items: number
}

/** One row per queue (GET /queues, and the dashboard). */
export function queueRows(collection: QueueCollection): QueueRow[] {
  const rows: QueueRow[] = []
  for (const name of collection.queueNames) {
    const q = collection.peekQueue(name)
    if (!q) continue
    rows.push({
      name,
      items: q.length,
      bytes: q.bytes,
      age_ms: q.lastAgeMs,
      open: q.openCount,
      waiters: q.waiterCount,
      total_items: q.totalItems,
      dequeued_items: q.dequeuedItems,
      expired_items: q.expiredItems,
    })
  }
  return rows
}

/**
 * Serve a path under /queues (`segments` are the parts after `queues`). `user` is who asked
 * (`''` without auth): receipts are bound to it.
 */
export async function serveQueues(
  ctx: QueueRoutesContext,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  segments: string[],
  user: string,
): Promise<void> {
  const method = req.method ?? 'GET'
  if (segments.length === 0) {
    if (method !== 'GET') throw new HttpError(405, 'use GET', { Allow: 'GET' })
    return sendJson(res, 200, queueRows(ctx.collection))
  }
  if (segments.length > 2) throw new HttpError(404, 'no such route')
  const queue = queueNameFrom(segments[0]!, ctx.maxKeyLength)
  const action = segments[1]
  if (action === undefined) {
    if (method === 'POST') return enqueue(ctx, req, res, queue)
    if (method === 'GET') return dequeue(ctx, res, queue, { ...PLAIN_READ, timeoutMs: waitOf(url) })
    if (method === 'DELETE') return remove(ctx, res, queue)
    throw new HttpError(405, 'use POST, GET or DELETE', { Allow: 'POST, GET, DELETE' })
  }
  switch (action) {
    case 'peek':
      if (method !== 'GET') throw new HttpError(405, 'use GET', { Allow: 'GET' })
      return dequeue(ctx, res, queue, { ...PLAIN_READ, peek: true })
    case 'open':
      if (method !== 'POST') throw new HttpError(405, 'use POST', { Allow: 'POST' })
      return openRead(ctx, res, queue, waitOf(url), user)
    case 'close':
    case 'abort':
      if (method !== 'POST') throw new HttpError(405, 'use POST', { Allow: 'POST' })
      return finishRead(ctx, res, queue, url.searchParams.get('receipt'), user, action)
    default:
      throw new HttpError(404, 'no such route')
  }
}

function waitOf(url: URL): number {
  return Math.min(uintParam('wait', url.searchParams.get('wait'), Number.MAX_SAFE_INTEGER, 0), MAX_WAIT_MS)
}

async function enqueue(ctx: QueueRoutesContext, req: IncomingMessage, res: ServerResponse, queue: string): Promise<void> {
  const flags = uintParam('X-Starling-Flags', header(req, 'x-starling-flags'), MAX_U32, 0)
  const ttl = intParam('X-Starling-TTL', header(req, 'x-starling-ttl'), 0)
  const body = await readBody(req, ctx.maxItemSize)
  const session = ctx.dispatcher.createSession()
  await new Promise<void>((resolve) => {
    session.set(queue, flags, ttl, body, (err) => {
      session.close()
      if (err) sendError(res, err)
      else sendEmpty(res, 201, { 'Content-Length': '0' })
      resolve()
    })
  })
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name]
  return Array.isArray(v) ? v[0] : v
}

/**
 * A read with a Session of its own: `onItem` runs once with the engine's answer, `onLeave` instead
 * if the client goes away first (closing the session cancels a wait, and the engine gives back an
 * item that reaches a closed session: never lost).
 */
function readOnce(
  ctx: QueueRoutesContext,
  res: ServerResponse,
  queue: string,
  options: QueueReadOptions,
  onItem: (session: Session, err: StarlingError | null, item: DeliveredItem | null) => void,
  onLeave: () => void = () => {},
): Promise<void> {
  const session = ctx.dispatcher.createSession()
  return new Promise((resolve) => {
    let settled = false
    res.once('close', () => {
      if (settled) return
      settled = true
      session.close()
      onLeave()
      resolve()
    })
    session.get(queue, options, (err, item) => {
      if (settled) return
      settled = true
      onItem(session, err, item)
      resolve()
    })
  })
}

/** GET and peek: a Session for this request only; a client that leaves while waiting stops waiting. */
function dequeue(ctx: QueueRoutesContext, res: ServerResponse, queue: string, options: QueueReadOptions): Promise<void> {
  return readOnce(ctx, res, queue, options, (session, err, item) => {
    session.close()
    if (err) sendError(res, err)
    else if (!item) sendEmpty(res, 204)
    else sendItem(res, item, {})
  })
}

function openRead(ctx: QueueRoutesContext, res: ServerResponse, queue: string, timeoutMs: number, user: string): Promise<void> {
  if (!ctx.receipts.reserve(user)) {
    throw new HttpError(429, 'too many open receipts for this user; close or abort some first')
  }
  const options = { ...PLAIN_READ, open: true, timeoutMs }
  return readOnce(
    ctx,
    res,
    queue,
    options,
    (session, err, item) => {
      if (err || !item) {
        session.close()
        ctx.receipts.release(user)
        if (err) sendError(res, err)
        else sendEmpty(res, 204)
        return
      }
      const receipt = ctx.receipts.issue(user, queue, session)
      sendItem(res, item, { 'X-Starling-Receipt': receipt })
    },
    () => ctx.receipts.release(user),
  )
}

function finishRead(
  ctx: QueueRoutesContext,
  res: ServerResponse,
  queue: string,
  id: string | null,
  user: string,
  action: 'close' | 'abort',
): Promise<void> {
  if (!id) throw new HttpError(400, 'receipt parameter required')
  const receipt = ctx.receipts.take(id, user, queue)
  if (!receipt) throw new HttpError(404, 'no such receipt (unknown, expired, or not yours)')
  const options: QueueReadOptions = { ...PLAIN_READ, close: action === 'close', abort: action === 'abort' }
  return new Promise((resolve) => {
    receipt.session.get(queue, options, (err) => {
      ctx.receipts.finish(receipt)
      if (err) sendError(res, err)
      else sendEmpty(res, 204)
      resolve()
    })
  })
}

function remove(ctx: QueueRoutesContext, res: ServerResponse, queue: string): Promise<void> {
  const session: Session = ctx.dispatcher.createSession()
  return new Promise((resolve) => {
    session.delete(queue, (err, existed) => {
      session.close()
      if (err) sendError(res, err)
      else if (existed) sendEmpty(res, 204)
      else sendText(res, 404, 'no such queue')
      resolve()
    })
  })
}

function sendItem(res: ServerResponse, item: DeliveredItem, extra: Record<string, string>): void {
  if (res.headersSent || res.destroyed) return
  res.writeHead(200, {
    'Content-Type': 'application/octet-stream',
    'Content-Length': item.data.length,
    'X-Starling-Flags': String(item.flags),
    'Cache-Control': 'no-store',
    ...extra,
  })
  res.end(item.data)
}

function sendError(res: ServerResponse, err: StarlingError): void {
  sendText(res, statusOf(err), err.message)
}
