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
import { parseQueueKey, parseSetKey, validateKey } from '../keyOptions.js'
import { NEED_MORE, ProtocolHandler } from '../handler.js'
import {
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
import { encodeError, encodeItem, encodeKeyMiss, encodeResponse, encodeStats } from './serializer.js'

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
      this.expect(outcome.needed)
      return NEED_MORE
    }
    const request = outcome.request
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
      case 'flush': {
        const slot = this.out.reserve()
        this.session.flushAll((err) => {
          if (err) this.out.fill(slot, this.errorFor(opcode, opaque, err))
          else if (request.quiet) this.out.fill(slot)
          else this.out.fill(slot, encodeResponse(opcode, opaque, Status.NO_ERROR))
        })
        return
      }
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
    const { opcode, opaque, key, quiet, withKey } = request
    const slot = this.out.reserve()
    this.session.get(queue, options, (err, item) => {
      if (err) this.out.fill(slot, this.errorFor(opcode, opaque, err))
      else if (item) this.out.fill(slot, ...encodeItem(opcode, opaque, withKey ? key : null, item.flags, item.cas, item.data))
      else if (quiet) this.out.fill(slot)
      else if (withKey) this.out.fill(slot, encodeKeyMiss(opcode, opaque, key))
      else this.out.fill(slot, encodeError(opcode, opaque, Status.KEY_ENOENT))
    })
  }

  private set(request: SetRequest): void {
    const queue = parseSetKey(request.key, this.limits.maxKeyLength)
    const { opcode, opaque, quiet } = request
    if (request.cas !== 0n) {
      // A queue has no "current value" to compare with: CAS is refused, not ignored.
      this.out.push(encodeError(opcode, opaque, Status.NOT_SUPPORTED, 'cas is not supported on a queue'))
      return
    }
    const slot = this.out.reserve()
    this.session.set(queue, request.flags, request.exptime, request.value, (err) => {
      if (err) this.out.fill(slot, this.errorFor(opcode, opaque, err))
      else if (quiet) this.out.fill(slot)
      else this.out.fill(slot, encodeResponse(opcode, opaque, Status.NO_ERROR))
    })
  }

  private delete(request: DeleteRequest): void {
    const { opcode, opaque, quiet } = request
    validateKey(request.key, this.limits.maxKeyLength)
    if (request.key.includes('/')) throw new StarlingError('BAD_OPTIONS', 'options are not allowed on delete')
    if (request.cas !== 0n) {
      this.out.push(encodeError(opcode, opaque, Status.NOT_SUPPORTED, 'cas is not supported on a queue'))
      return
    }
    const slot = this.out.reserve()
    this.session.delete(request.key, (err, existed) => {
      if (err) this.out.fill(slot, this.errorFor(opcode, opaque, err))
      else if (!existed) this.out.fill(slot, encodeError(opcode, opaque, Status.KEY_ENOENT))
      else if (quiet) this.out.fill(slot)
      else this.out.fill(slot, encodeResponse(opcode, opaque, Status.NO_ERROR))
    })
  }

  private stat(request: StatRequest): void {
    const { opcode, opaque } = request
    const key = request.key
    this.out.pushWhenReady(() => {
      if (key === null) return [encodeStats(opcode, opaque, this.session.stats())]
      const pairs = this.session.queueStats(key)
      return [pairs === null ? encodeError(opcode, opaque, Status.KEY_ENOENT) : encodeStats(opcode, opaque, pairs)]
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
    if (request.kind === 'saslAuth' && this.session.authenticate(request.mechanism, request.payload)) {
      this.out.push(encodeResponse(opcode, opaque, Status.NO_ERROR, 'Authenticated'))
    } else {
      this.out.push(encodeError(opcode, opaque, Status.AUTH_ERROR))
    }
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
