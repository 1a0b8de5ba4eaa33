/**
 * SIGHUP: which changed settings a reload applies and which only take effect after a restart
 * (listeners, spool, identity, auth, TLS, logging). A setting not listed as applied is reported as
 * needing a restart, so a new setting is never silently ignored.
 */
import { resolve } from 'node:path'
import type { ServerConfig } from './config.js'

/** Applied by StarlingServer.reload: queue settings at once, connection limits to new connections. */
const APPLIED_ON_RELOAD = new Set<string>([
  'queueDefaults',
  'queues',
  'maxMemoryTotal',
  'maxItemSize',
  'maxKeyLength',
  'maxLineLength',
  'maxOutputBytes',
  'maxPendingReplies',
  'maxConnections',
  'timeoutSec',
  'reclaimAfterDeletes',
])

/** The YAML name of a ServerConfig field, for the log. */
const YAML_NAMES: Record<string, string> = { timeoutSec: 'timeout', queueDefaults: 'per-queue defaults', logFile: 'log_file' }

function yamlName(field: string): string {
  return YAML_NAMES[field] ?? field.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())
}

export interface ReloadChanges {
  applied: string[]
  needRestart: string[]
}

export function reloadChanges(current: ServerConfig, next: ServerConfig): ReloadChanges {
  const out: ReloadChanges = { applied: [], needRestart: [] }
  const fields = new Set([...Object.keys(current), ...Object.keys(next)])
  for (const field of fields) {
    const a = (current as unknown as Record<string, unknown>)[field]
    const b = (next as unknown as Record<string, unknown>)[field]
    const same = field === 'queuePath' ? resolve(String(a)) === resolve(String(b)) : JSON.stringify(a) === JSON.stringify(b)
    if (same) continue
    ;(APPLIED_ON_RELOAD.has(field) ? out.applied : out.needRestart).push(yamlName(field))
  }
  return out
}
