/**
 * A replay thread: scans whole segment files (framing and CRC, scan.ts) and sends their records
 * back as columns, so that the CRC work of a big replay runs on every core while the main thread
 * builds the live index in order. It only reads. The main thread sends the column arrays back
 * when it has applied them, so a long replay reuses a few arrays instead of making garbage.
 */
import * as fs from 'node:fs'
import { parentPort } from 'node:worker_threads'
import { ColumnSink, columnBuffers, scanRecords, type ScannedRecords } from './scan.js'
import type { ScanReply, ToScanThread } from './scanPool.js'

// 1 MiB reads: big enough that syscalls do not matter, small enough to cost little per thread
const chunk = { buf: Buffer.allocUnsafe(1024 * 1024) }
const spare: ScannedRecords[] = []

parentPort!.on('message', (m: ToScanThread) => {
  if (m.type === 'recycle') {
    spare.push(m.records)
    return
  }
  let reply: ScanReply
  let transfer: ArrayBuffer[] = []
  try {
    const fd = fs.openSync(m.path, 'r')
    try {
      const sink = new ColumnSink(spare.pop())
      const records = sink.result(scanRecords(fd, m.fileSize, m.start, chunk, sink))
      reply = { id: m.id, records }
      transfer = columnBuffers(records)
    } finally {
      fs.closeSync(fd)
    }
  } catch (err) {
    reply = { id: m.id, error: (err as Error).message }
  }
  parentPort!.postMessage(reply, transfer)
})
