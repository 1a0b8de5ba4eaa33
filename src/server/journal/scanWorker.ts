/**
 * A replay thread: scans whole segment files (framing and CRC, scan.ts) and sends their records
 * back as columns, so that the CRC work of a big replay runs on every core while the main thread
 * builds the live index in order. It only reads.
 */
import * as fs from 'node:fs'
import { parentPort } from 'node:worker_threads'
import { ColumnSink, scanRecords } from './scan.js'
import { CHUNK_BYTES } from './segment.js'
import type { ScanReply, ScanRequest } from './scanPool.js'

const chunk = { buf: Buffer.allocUnsafe(CHUNK_BYTES) }

parentPort!.on('message', (m: ScanRequest) => {
  let reply: ScanReply
  const transfer: ArrayBuffer[] = []
  try {
    const fd = fs.openSync(m.path, 'r')
    try {
      const sink = new ColumnSink()
      const records = sink.result(scanRecords(fd, m.fileSize, m.start, chunk, sink))
      reply = { id: m.id, records }
      transfer.push(...[records.ops, records.seqs, records.offs, records.sizes].map((a) => a.buffer as ArrayBuffer))
    } finally {
      fs.closeSync(fd)
    }
  } catch (err) {
    reply = { id: m.id, error: (err as Error).message }
  }
  parentPort!.postMessage(reply, transfer)
})
