/**
 * What memcached's meta commands do on a queue server (parsing is in metaParser.ts): mg dequeues,
 * ms enqueues, md drops the queue, mn and me answer at once. Replies go into the Outbox in command
 * order; `q` hides the nominal reply, never an error.
 */
import type { DeliveredItem, Session } from '../../dispatcher.js'
import type { ProtocolLimits } from '../handler.js'
import { plainQueueName } from '../keyOptions.js'
import { readKeyOrRefuse, setKeyOrRefuse } from './keys.js'
import type { Outbox } from '../outbox.js'
import type { MetaCommand, MetaReturnFlags } from './commands.js'
import { EN, MN, errorReply, metaLine, metaValueReply, replyFor, type MetaItemInfo } from './serializer.js'

export interface MetaContext {
  session: Session
  out: Outbox
  limits: ProtocolLimits
  /** Parse no later command until the returned function runs (a blocking mg). */
  hold: () => () => void
}

/** Act on a meta command; replies go into the outbox in command order. */
export function executeMeta(cmd: MetaCommand, ctx: MetaContext): void {
  switch (cmd.type) {
    case 'mn':
      ctx.out.push(MN)
      return
    case 'me':
      ctx.out.push(EN)
      return
    case 'mg':
      return metaGet(cmd.key, cmd.value, cmd.returns, ctx)
    case 'ms':
      return metaSet(cmd, ctx)
    case 'md':
      return metaDelete(cmd.key, cmd.returns, ctx)
  }
}

/** Reserve the reply's place, run the session call, fill the place once; a throw becomes the reply. */
function replyLater(ctx: MetaContext, run: (fill: (...chunks: Buffer[]) => void) => void, settled?: () => void): void {
  ctx.out.later(run, (err) => [replyFor(err)], settled)
}

function metaGet(key: string, value: boolean, returns: MetaReturnFlags, ctx: MetaContext): void {
  const parsed = readKeyOrRefuse(ctx.out, key, ctx.limits.maxKeyLength)
  if (parsed === null) return
  const { queue, options } = parsed
  replyLater(
    ctx,
    (fill) =>
      ctx.session.get(queue, options, (err, item) => {
        if (err) return fill(errorReply(err))
        if (!item) return returns.quiet ? fill() : fill(metaLine('EN', returns, null))
        const info = itemInfo(item)
        if (!value) return fill(metaLine('HD', returns, info))
        fill(metaValueReply(returns, info, item.data))
      }),
    options.timeoutMs > 0 ? ctx.hold() : undefined,
  )
}

function metaSet(cmd: Extract<MetaCommand, { type: 'ms' }>, ctx: MetaContext): void {
  const queue = setKeyOrRefuse(ctx.out, cmd.key, ctx.limits.maxKeyLength)
  if (queue === null) return
  if (cmd.refusedMode) {
    ctx.out.push(metaLine('NS', cmd.returns, null))
    return
  }
  replyLater(ctx, (fill) =>
    ctx.session.set(queue, cmd.flags, cmd.exptime, cmd.data, (err) => {
      if (err) return fill(errorReply(err))
      return cmd.returns.quiet ? fill() : fill(metaLine('HD', cmd.returns, null))
    }),
  )
}

function metaDelete(key: string, returns: MetaReturnFlags, ctx: MetaContext): void {
  let queue: string
  try {
    queue = plainQueueName(key, ctx.limits.maxKeyLength, 'md')
  } catch (err) {
    ctx.out.push(replyFor(err))
    return
  }
  replyLater(ctx, (fill) =>
    ctx.session.delete(queue, (err, existed) => {
      if (err) return fill(errorReply(err))
      if (!existed) return fill(metaLine('NF', returns, null))
      return returns.quiet ? fill() : fill(metaLine('HD', returns, null))
    }),
  )
}

function itemInfo(item: DeliveredItem): MetaItemInfo {
  return { flags: item.flags, size: item.data.length, cas: item.cas, ttlSeconds: ttlSeconds(item) }
}

/** Seconds until the item expires (`t` flag), -1 when it never does or the engine does not say. */
function ttlSeconds(item: DeliveredItem): number {
  const expiresAt = item.expiresAt
  if (expiresAt === undefined || expiresAt <= 0) return -1
  return Math.max(0, Math.ceil((expiresAt - Date.now()) / 1000))
}
