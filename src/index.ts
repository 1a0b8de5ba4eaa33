/**
 * starling-queue: the client library. The server lives under `starling-queue/server`.
 */
export * from './client/index.js'
