/**
 * The text protocol on a connection (Kestrel's TextHandler): parsed command → Session call →
 * encoded reply into the Outbox, in command order. Meta commands ride on the same framing and are
 * handled in meta.ts. The handler never sees the socket: it reads through `feed` (the base class)
 * and closes through `connection.end()`.
 */
import { NEED_MORE, ProtocolHandler } from '../handler.js'
import { plainQueueName, type ParsedKey } from '../keyOptions.js'
import { readKeyOrRefuse, setKeyOrRefuse } from './keys.js'
import { statsStream } from '../statsStream.js'
import {
  failure,
  type DeleteCommand,
  type FlushCommand,
  type GetCommand,
  type ParseFailure,
  type SetCommand,
  type TextCommand,
} from './commands.js'
import { StarlingError } from '../../errors.js'
import { executeMeta, type MetaContext } from './metaHandler.js'
import { parseCommand, skipThroughNewline } from './parser.js'
import {
  AUTH_FAILED,
  CRLF,
  DELETED,
  END,
  ERROR,
  NOT_FOUND,
  OK,
  RESET,
  STORED,
  UNAUTHENTICATED,
  clientError,
  framedValueReply,
  errorReply,
  replyFor,
  statLines,
  statsReply,
  valueHeader,
  valueReply,
  ValueFrame,
  versionReply,
} from './serializer.js'

const NUL = Buffer.from([0])

function outOfMemory(): StarlingError {
  return new StarlingError('OUT_OF_MEMORY', 'out of memory storing object')
}
const SPACE = 0x20

export class TextHandler extends ProtocolHandler {
  /** After a bad data chunk: skipping input through the next newline. */
  private resyncing = false
  /** The last get's frame: a client reads the same queue get after get (immutable, so shareable). */
  private frame: ValueFrame | undefined
  private readonly metaContext: MetaContext = {
    session: this.session,
    out: this.out,
    limits: this.limits,
    hold: () => this.hold(),
  }

  protected parseOne(buf: Buffer, start: number, end: number): number {
    if (this.resyncing) {
      const skip = skipThroughNewline(buf, start, end)
      if (skip.found) this.resyncing = false
      this.countRead(skip.consumed)
      return skip.consumed
    }
    const result = parseCommand(buf, start, end, this.limits)
    switch (result.kind) {
      case 'incomplete': {
        const header = result.headerBytes ?? 0
        if (result.expectBytes === 0 || this.reserveFrame(result.expectBytes)) return NEED_MORE
        // No room in the input budget: refuse now and swallow the data block, staying in step.
        this.refuse(failure(header, outOfMemory(), { discard: result.expectBytes - header, noreply: result.noreply ?? false }))
        return header
      }
      case 'error':
        this.countRead(result.consumed)
        this.refuse(result)
        return result.consumed
      case 'command':
        this.countRead(result.consumed)
        this.execute(result.command)
        return result.consumed
    }
  }

  private refuse(result: ParseFailure): void {
    if (!result.noreply) this.out.push(errorReply(result.error))
    if (result.discard > 0) this.discardNext(result.discard)
    if (result.resync) this.resyncing = true
    if (result.close) this.quit()
  }

  /** Auth is on, this session has not authenticated, and text commands are not let through. */
  private get locked(): boolean {
    const s = this.session
    return s.authRequired && !s.authenticated && !s.textAllowedUnauthenticated
  }

  private execute(cmd: TextCommand): void {
    if (this.locked) {
      if (cmd.type === 'set') this.authenticate(cmd.data)
      else if (cmd.type === 'quit') this.quit()
      else this.out.push(UNAUTHENTICATED)
      return
    }
    try {
      this.dispatch(cmd)
    } catch (err) {
      // A throw from below (a bug, or a StarlingError thrown instead of passed): answer it, go on.
      this.out.push(replyFor(err))
    }
  }

  private dispatch(cmd: TextCommand): void {
    const { session, out } = this
    switch (cmd.type) {
      case 'set':
        return this.set(cmd)
      case 'get':
        return this.get(cmd)
      case 'delete':
        return this.delete(cmd)
      case 'flush':
        return this.flush(cmd)
      case 'flush_all': {
        const noreply = cmd.noreply
        return this.later((done) => session.flushAll((err) => done(err ? errorReply(err) : noreply ? null : OK)), noreply)
      }
      case 'stats': {
        // Taken when every command before it is done, before any after it is parsed: it shows
        // exactly the commands before it (arrival order), then streams out.
        const queue = cmd.queue
        const release = this.hold()
        out.pushWhenReady(() => {
          try {
            // memcached's `stats reset` (so `reset` names no queue here; binary STAT reaches it).
            if (queue === 'reset') return (session.resetStats(), [RESET])
            if (queue === null) return statsStream(session.stats(), statLines, END)
            return [statsReply(session.queueStats(queue) ?? [])]
          } catch (err) {
            return [replyFor(err)]
          } finally {
            release()
          }
        })
        return
      }
      case 'version':
        out.push(versionReply(session.version()))
        return
      case 'verbosity':
        session.verbosity(cmd.level)
        if (!cmd.noreply) out.push(OK)
        return
      case 'quit':
        return this.quit()
      case 'shutdown':
        out.push(session.shutdown() ? OK : ERROR)
        return
      case 'refused_storage':
      case 'refused':
        if (!cmd.noreply) out.push(clientError(`${cmd.name} is not supported by a queue server`))
        return
      case 'unknown':
        out.push(ERROR)
        return
      default:
        return executeMeta(cmd, this.metaContext)
    }
  }

  /** The hot path: one slot, one callback, filled once (fillOne ignores a second fill). */
  private set(cmd: SetCommand): void {
    const queue = setKeyOrRefuse(this.out, cmd.key, this.limits.maxKeyLength, cmd.noreply)
    if (queue === null) return
    const out = this.out
    const slot = out.reserve()
    const noreply = cmd.noreply
    try {
      this.session.set(queue, cmd.flags, cmd.exptime, cmd.data, (err) =>
        out.fillOne(slot, noreply ? null : err ? errorReply(err) : STORED),
      )
    } catch (err) {
      out.fillOne(slot, noreply ? null : replyFor(err))
    }
  }

  /**
   * One reply slot for the whole multi-get, filled when every key is done. The keys are served one
   * after another, in order, each waiting as long as its own `/t=` option says — so a multi-get
   * with waits can take the sum of them. An error on one key ends the reply there: the items
   * already taken are sent, then the error line instead of END (an item dequeued is never dropped).
   */
  private get(cmd: GetCommand): void {
    const keys: ParsedKey[] = []
    for (const key of cmd.keys) {
      const parsed = readKeyOrRefuse(this.out, key, this.limits.maxKeyLength)
      if (parsed === null) return
      keys.push(parsed)
    }
    // A blocking get holds later commands until it is answered: they must not feed it or see the
    // queue before it (memcached clients expect the wait to come first). So does a multi-get: its
    // keys run one after another, and a later command must not reach a key before it does.
    if (keys.length === 1 && keys[0]!.options.timeoutMs === 0) return this.getOne(cmd.keys[0]!, keys[0]!, cmd.withCas)
    const blocking = keys.length > 1 || keys.some((k) => k.options.timeoutMs > 0)
    const settled = blocking ? this.hold() : undefined
    this.out.later(
      (fill) => {
        const chunks: Buffer[] = []
        let index = 0
        let ended = false
        const finish = (last: Buffer): void => {
          ended = true
          fill(...chunks, last)
        }
        const next = (): void => {
          if (index === keys.length) return finish(END)
          const i = index++
          const { queue, options } = keys[i]!
          try {
            this.session.get(queue, options, (err, item) => {
              if (ended) return
              if (err) return finish(errorReply(err))
              if (item) {
                chunks.push(valueHeader(cmd.keys[i]!, item.flags, item.data.length, cmd.withCas ? item.cas : -1), item.data, CRLF)
              }
              next()
            })
          } catch (err) {
            // The items already taken are sent, then the error.
            finish(replyFor(err))
          }
        }
        next()
      },
      (err) => [replyFor(err)],
      settled,
    )
  }

  /** The common case, one key and no wait: no per-key loop, one callback, the reply in one buffer. */
  private getOne(key: string, { queue, options }: ParsedKey, withCas: boolean): void {
    const out = this.out
    const slot = out.reserve()
    try {
      if (withCas) {
        this.session.get(queue, options, (err, item) =>
          out.fillOne(slot, err ? errorReply(err) : item ? valueReply(key, item.flags, item.data, item.cas) : END),
        )
        return
      }
      // the payload is copied out of the queue straight into the reply (ValueFrame)
      this.session.get(
        queue,
        options,
        (err, item) => out.fillOne(slot, err ? errorReply(err) : item ? framedValueReply(key, item.flags, item.data, item.framed) : END),
        this.frame?.key === key ? this.frame : (this.frame = new ValueFrame(key)),
      )
    } catch (err) {
      out.fillOne(slot, replyFor(err))
    }
  }

  /** The queue a delete or flush names, or null once the error is answered (options, bad key). */
  private plainQueue(key: string, noreply: boolean, commandName: string): string | null {
    try {
      return plainQueueName(key, this.limits.maxKeyLength, commandName)
    } catch (err) {
      if (!noreply) this.out.push(replyFor(err))
      return null
    }
  }

  private delete(cmd: DeleteCommand): void {
    const queue = this.plainQueue(cmd.key, cmd.noreply, 'delete')
    if (queue === null) return
    const noreply = cmd.noreply
    this.later(
      (done) =>
        this.session.delete(queue, (err, existed) =>
          done(noreply ? null : err ? errorReply(err) : existed ? DELETED : NOT_FOUND),
        ),
      noreply,
    )
  }

  private flush(cmd: FlushCommand): void {
    const queue = this.plainQueue(cmd.key, cmd.noreply, 'flush')
    if (queue === null) return
    const noreply = cmd.noreply
    this.later((done) => this.session.flush(queue, (err) => done(noreply ? null : err ? errorReply(err) : OK)), noreply)
  }

  /**
   * Run a Session call whose reply may come later: the slot is reserved now (replies stay in
   * command order) and filled once, `null` meaning no reply, even if the call throws.
   */
  private later(start: (done: (reply: Buffer | null) => void) => void, noreply: boolean): void {
    this.out.later(
      (fill) => start((reply) => (reply === null ? fill() : fill(reply))),
      (err) => (noreply ? [] : [replyFor(err)]),
    )
  }

  /**
   * memcached's text auth: a `set` whose data is `username password`, the password being everything
   * after the first space (it may contain spaces). Later commands wait for the answer: whether they
   * run depends on it (arrival order); too many failures close the connection.
   */
  private authenticate(data: Buffer): void {
    const space = data.indexOf(SPACE)
    const user = space < 0 ? data : data.subarray(0, space)
    const password = space < 0 ? Buffer.alloc(0) : data.subarray(space + 1)
    // The credentials go to the session as SASL PLAIN, bytes untouched.
    const payload = Buffer.concat([NUL, user, NUL, password])
    const release = this.hold()
    this.out.later(
      (fill) =>
        this.session.authenticate('PLAIN', payload, (ok, close) => {
          fill(ok ? STORED : AUTH_FAILED)
          if (close) this.quit()
        }),
      () => [AUTH_FAILED],
      release,
    )
  }

  private quit(): void {
    this.connection.end()
    this.close()
  }
}
