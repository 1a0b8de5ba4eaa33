/**
 * Reads into one reused buffer (net.Socket's `onread` option) instead of a fresh Buffer per read
 * pushed through the Readable stream: the profile showed the stream path and the per-read buffers
 * as 15-20% of the server's CPU (issue 13). net.Server has no `onread` option, so the listener
 * accepts paused (`pauseOnConnect`) and the accepted handle moves to a Socket made with `onread`,
 * as Node's own docs suggest for `onread` on the server side (and as ../shared/bench/floor.mjs does).
 *
 * Every connection shares the one buffer: callbacks run one at a time on the event loop, and the
 * protocol handler copies whatever it keeps past the call (a partial frame, held commands; the
 * engine copies an item's payload) before returning, so the next read may overwrite it.
 */
import { Socket, type SocketConstructorOpts } from 'node:net'

/** As large as the socket's own read size (libuv reads at most 64 KiB at a time). */
const READ_BUFFER_BYTES = 64 * 1024
let shared: Buffer | null = null

/** The fields of an accepted net.Socket that the hand-over touches (Node internals, stable since v12). */
interface Adoptable {
  _handle: unknown
  _server: unknown
}

/**
 * Move an accepted, paused socket's handle to a new Socket whose reads call `onChunk` with a view of
 * the shared buffer, valid only during the call. The server's connection count moves along, so
 * `maxConnections` and `server.close()` still see this connection until it closes.
 */
export function adoptWithReusedReads(accepted: Socket, onChunk: (chunk: Buffer) => void): Socket {
  shared ??= Buffer.allocUnsafe(READ_BUFFER_BYTES)
  const from = accepted as unknown as Adoptable
  // `handle` is accepted by the constructor but missing from @types/node's SocketConstructorOpts.
  const options = {
    handle: from._handle,
    onread: { buffer: shared, callback: (n: number, buf: Uint8Array) => void onChunk((buf as Buffer).subarray(0, n)) },
  }
  const socket = new Socket(options as SocketConstructorOpts)
  ;(socket as unknown as Adoptable)._server = from._server
  from._handle = null
  from._server = null
  return socket
}
