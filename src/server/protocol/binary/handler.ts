/**
 * The memcached binary protocol over a Session (memcached's proto_bin.c, as a queue): GET* dequeue,
 * SET enqueue, DELETE drops a queue, FLUSH is flush_all, STAT, VERSION, NOOP, QUIT, SASL PLAIN.
 *
 * Every request gets its reply in request order through the Outbox (a blocking `q/t=500` GET holds
 * the replies behind it). Quiet commands send nothing on success (GETQ/GETKQ: nothing on a miss);
 * their errors are always sent. A malformed frame gets one error reply and the connection closes.
 *
 * Where a queue differs from a cache:
 * - SET/DELETE with a non-zero cas are refused with NOT_SUPPORTED (a queue has no value to compare);
 *   a SET reply's cas is 0. ADD/REPLACE/APPEND/PREPEND/INCR/DECR/TOUCH/GAT* are NOT_SUPPORTED.
 * - With auth configured, an unauthenticated command gets AUTH_ERROR and the connection stays open
 *   (so the client can still authenticate); SASL commands, VERSION and QUIT are always allowed.
 *   Without auth configured the SASL commands are unknown (0x81), as in memcached without -S.
 * - A bad magic byte is answered with opcode 0 and opaque 0: nothing in that header can be trusted.
 */
import { StarlingError } from '../../errors.js'
import { parseQueueKey, parseSetKey, plainQueueName } from '../keyOptions.js'
import { NEED_MORE, ProtocolHandler } from '../handler.js'
import {
  HEADER_LENGTH,
  Opcode,
  Status,
  type BinaryRequest,
  type DeleteRequest,
  type GetRequest,
  type SaslRequest,
  type SetRequest,
  type StatRequest,
} from './commands.js'
import { parseRequest } from './parser.js'
import type { DeliveredItem } from '../../dispatcher.js'
import type { Fill } from '../outbox.js'
import { statsStream } from '../statsStream.js'
import { encodeError, encodeItem, encodeKeyMiss, encodeResponse, encodeStatPairs, encodeStats, GET_FRAME, ItemFrame } from './serializer.js'

const OUT_OF_MEMORY = 'out of memory storing object'

/** Map a typed error to a binary status and the text sent with it. */
export function statusForError(err: StarlingError): { status: number; message: string } {
  switch (err.code) {
    case 'BAD_KEY':
    case 'BAD_OPTIONS':
    case 'BAD_COMMAND':
    case 'BAD_DATA_CHUNK':
    case 'OPEN_READ_PENDING':
      return { status: Status.EINVAL, message: err.message }
    case 'TOO_LARGE':
      return { status: Status.E2BIG, message: err.message }
    case 'QUEUE_FULL':
      return { status: Status.NOT_STORED, message: 'queue full' }
    case 'OUT_OF_MEMORY':
      return { status: Status.ENOMEM, message: err.message }
    case 'NOT_SUPPORTED':
      return { status: Status.NOT_SUPPORTED, message: err.message }
    case 'AUTH_REQUIRED':
    case 'AUTH_FAILED':
      return { status: Status.AUTH_ERROR, message: 'Auth failure.' }
    case 'SHUTTING_DOWN':
    case 'TOO_MANY_QUEUES':
      return { status: Status.TEMPORARY_FAILURE, message: err.message }
    case 'IO':
      return { status: Status.INTERNAL_ERROR, message: err.message }
  }
}

export class BinaryHandler extends ProtocolHandler {
  protected parseOne(buf: Buffer, start: number, end: number): number {
    const outcome = parseRequest(buf, start, end, this.limits)
    if (outcome.request === null) {
      if (outcome.header === null) {
        this.expect(outcome.needed)
        return NEED_MORE
      }
      if (this.reserveFrame(outcome.needed)) return NEED_MORE
      // No room in the input budget: refuse from the header and swallow the body, staying in step.
      this.out.push(encodeError(outcome.header.opcode, outcome.header.opaque, Status.ENOMEM, OUT_OF_MEMORY))
      this.discardNext(outcome.needed - HEADER_LENGTH)
      return HEADER_LENGTH
    }
    const request = outcome.request
    this.countRead(outcome.consumed)
    if (request.kind === 'violation') {
      this.out.push(encodeError(request.opcode, request.opaque, request.status, request.message))
      this.hangUp()
      return outcome.consumed
    }
    if (request.kind === 'notSupported' || request.kind === 'unknown' || request.kind === 'tooLarge') {
      this.discardNext(request.skip)
    }
    if (this.session.authRequired && !this.session.authenticated && !allowedBeforeAuth(request)) {
      this.out.push(encodeError(request.opcode, request.opaque, Status.AUTH_ERROR))
      return outcome.consumed
    }
    try {
      this.dispatch(request)
    } catch (err) {
      // Key validation throws before the session is called; nothing was queued for this request.
      if (!(err instanceof StarlingError)) throw err
      const { status, message } = statusForError(err)
      this.out.push(encodeError(request.opcode, request.opaque, status, message))
    }
    return outcome.consumed
  }

  private dispatch(request: Exclude<BinaryRequest, { kind: 'violation' }>): void {
    const { opcode, opaque } = request
    switch (request.kind) {
      case 'get':
        return this.get(request)
      case 'set':
        return this.set(request)
      case 'delete':
        return this.delete(request)
      case 'flush':
        return this.later(opcode, opaque, (fill) =>
          this.session.flushAll((err) => {
            if (err) fill(this.errorFor(opcode, opaque, err))
            else if (request.quiet) fill()
            else fill(encodeResponse(opcode, opaque, Status.NO_ERROR))
          }),
        )
      case 'noop':
        // Its reply goes out behind every earlier (quiet or pending) reply: the Outbox keeps order.
        this.out.push(encodeResponse(opcode, opaque, Status.NO_ERROR))
        return
      case 'version':
        this.out.push(encodeResponse(opcode, opaque, Status.NO_ERROR, this.session.version()))
        return
      case 'stat':
        return this.stat(request)
      case 'quit':
        if (!request.quiet) this.out.push(encodeResponse(opcode, opaque, Status.NO_ERROR))
        this.hangUp()
        return
      case 'saslListMechs':
        if (!this.session.authRequired) {
          this.out.push(encodeError(opcode, opaque, Status.UNKNOWN_COMMAND))
          return
        }
        this.out.push(encodeResponse(opcode, opaque, Status.NO_ERROR, this.session.saslMechanisms().join(' ')))
        return
      case 'saslAuth':
      case 'saslStep':
        return this.sasl(request)
      case 'notSupported':
        this.out.push(encodeError(opcode, opaque, Status.NOT_SUPPORTED))
        return
      case 'unknown':
        this.out.push(encodeError(opcode, opaque, Status.UNKNOWN_COMMAND))
        return
      case 'tooLarge':
        this.out.push(encodeError(opcode, opaque, Status.E2BIG))
        return
    }
  }

  private get(request: GetRequest): void {
    const { queue, options } = parseQueueKey(request.key, this.limits.maxKeyLength)
    const { opcode, opaque } = request
    // A blocking get holds later requests until it is answered (arrival order).
    if (options.timeoutMs > 0) {
      const settled = this.hold()
      this.later(
        opcode,
        opaque,
        (fill) =>
          this.session.get(queue, options, (err, item) => {
            const reply = this.getReply(request, err, item)
            if (reply === null) fill()
            else fill(reply)
          }),
        settled,
      )
      return
    }
    // The hot path: one slot, one callback, filled once (fillOne ignores a second fill).
    const out = this.out
    const slot = out.reserve()
    try {
      const frame = request.withKey ? new ItemFrame(request.key.length) : GET_FRAME
      this.session.get(queue, options, (err, item) => out.fillOne(slot, this.getReply(request, err, item)), frame)
    } catch (err) {
      out.fillOne(slot, this.errorForThrow(opcode, opaque, err))
    }
  }

  /** A GET's reply: the item, a miss (nothing for a quiet GET), or the error. */
  private getReply(request: GetRequest, err: StarlingError | null, item: DeliveredItem | null): Buffer | null {
    const { opcode, opaque, key, quiet, withKey } = request
    if (err) return this.errorFor(opcode, opaque, err)
    if (item) return encodeItem(opcode, opaque, withKey ? key : null, item.flags, item.cas, item.data, item.framed ?? null)
    if (quiet) return null
    if (withKey) return encodeKeyMiss(opcode, opaque, key)
    return encodeError(opcode, opaque, Status.KEY_ENOENT)
  }

  private set(request: SetRequest): void {
    const queue = parseSetKey(request.key, this.limits.maxKeyLength)
    const { opcode, opaque, quiet } = request
    if (request.cas !== 0n) {
      // A queue has no "current value" to compare with: CAS is refused, not ignored.
      this.out.push(encodeError(opcode, opaque, Status.NOT_SUPPORTED, 'cas is not supported on a queue'))
      return
    }
    const out = this.out
    const slot = out.reserve()
    try {
      this.session.set(queue, request.flags, request.exptime, request.value, (err) =>
        out.fillOne(slot, err ? this.errorFor(opcode, opaque, err) : quiet ? null : encodeResponse(opcode, opaque, Status.NO_ERROR)),
      )
    } catch (err) {
      out.fillOne(slot, this.errorForThrow(opcode, opaque, err))
    }
  }

  private delete(request: DeleteRequest): void {
    const { opcode, opaque, quiet } = request
    const queue = plainQueueName(request.key, this.limits.maxKeyLength, 'delete')
    if (request.cas !== 0n) {
      this.out.push(encodeError(opcode, opaque, Status.NOT_SUPPORTED, 'cas is not supported on a queue'))
      return
    }
    this.later(opcode, opaque, (fill) =>
      this.session.delete(queue, (err, existed) => {
        if (err) fill(this.errorFor(opcode, opaque, err))
        else if (!existed) fill(encodeError(opcode, opaque, Status.KEY_ENOENT))
        else if (quiet) fill()
        else fill(encodeResponse(opcode, opaque, Status.NO_ERROR))
      }),
    )
  }

  private stat(request: StatRequest): void {
    const { opcode, opaque } = request
    const key = request.key
    // Taken when every earlier request is done and before any later one is parsed, then streamed.
    const release = this.hold()
    this.out.pushWhenReady(() => {
      try {
        if (key === 'reset') {
          this.session.resetStats() // memcached's STAT "reset": just the terminator back
          return [encodeStats(opcode, opaque, [])]
        }
        if (key === null) {
          const encode = (pairs: ReadonlyArray<readonly [string, string]>): Buffer => encodeStatPairs(opcode, opaque, pairs)
          return statsStream(this.session.stats(), encode, encodeResponse(opcode, opaque, Status.NO_ERROR))
        }
        const pairs = this.session.queueStats(key)
        return [pairs === null ? encodeError(opcode, opaque, Status.KEY_ENOENT) : encodeStats(opcode, opaque, pairs)]
      } catch (err) {
        return [this.errorForThrow(opcode, opaque, err)]
      } finally {
        release()
      }
    })
  }

  private sasl(request: SaslRequest): void {
    const { opcode, opaque } = request
    if (!this.session.authRequired) {
      // As memcached without SASL: the command does not exist.
      this.out.push(encodeError(opcode, opaque, Status.UNKNOWN_COMMAND))
      return
    }
    // PLAIN completes in one step, so a SASL_STEP never has a conversation to continue.
    if (request.kind !== 'saslAuth') {
      this.out.push(encodeError(opcode, opaque, Status.AUTH_ERROR))
      return
    }
    // Later requests wait for the answer: whether they are allowed depends on it.
    const release = this.hold()
    this.later(
      opcode,
      opaque,
      (fill) =>
        this.session.authenticate(request.mechanism, request.payload, (ok, close) => {
          fill(ok ? encodeResponse(opcode, opaque, Status.NO_ERROR, 'Authenticated') : encodeError(opcode, opaque, Status.AUTH_ERROR))
          if (close) this.hangUp()
        }),
      release,
    )
  }

  /** Reserve the reply's place, fill it once; a throw from the session becomes an error reply. */
  private later(opcode: number, opaque: number, start: (fill: Fill) => void, settled?: () => void): void {
    this.out.later(start, (err) => [this.errorForThrow(opcode, opaque, err)], settled)
  }

  private errorForThrow(opcode: number, opaque: number, err: unknown): Buffer {
    if (err instanceof StarlingError) return this.errorFor(opcode, opaque, err)
    return encodeError(opcode, opaque, Status.INTERNAL_ERROR, err instanceof Error ? err.message : String(err))
  }

  private errorFor(opcode: number, opaque: number, err: StarlingError): Buffer {
    const { status, message } = statusForError(err)
    return encodeError(opcode, opaque, status, message)
  }

  /** Stop reading and close once the replies already queued are written. */
  private hangUp(): void {
    this.connection.end()
    this.close()
  }
}

/** What an unauthenticated connection may do (memcached's authenticated(), plus leaving). */
function allowedBeforeAuth(request: BinaryRequest): boolean {
  switch (request.opcode) {
    case Opcode.SASL_LIST_MECHS:
    case Opcode.SASL_AUTH:
    case Opcode.SASL_STEP:
    case Opcode.VERSION:
    case Opcode.QUIT:
    case Opcode.QUITQ:
      return true
    default:
      return false
  }
}
