/**
 * The spool directory: created 0700 whatever the umask (payloads are private), an existing one left
 * as the operator set it but with a warning when other users can read it. Created one level at a
 * time instead of Node's recursive mkdir, which spins at 100% CPU on paths it can never create
 * (under /proc, for example): here any failure is a one-line ConfigError naming the path.
 */
import * as fs from 'node:fs'
import { dirname, resolve } from 'node:path'
import { ConfigError } from './errors.js'
import type { Logger } from './logger.js'

const DIR_MODE = 0o700

function fail(path: string, err: unknown): never {
  throw new ConfigError(`cannot use spool directory ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
}

/** Create (or check) the spool directory; returns its absolute path. Reads nothing inside it. */
export function prepareSpool(queuePath: string, log: Logger): string {
  const spool = resolve(queuePath)
  const missing: string[] = []
  let dir = spool
  for (;;) {
    let st: fs.Stats
    try {
      st = fs.statSync(dir)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'ENOENT' || dirname(dir) === dir) fail(spool, err)
      missing.push(dir)
      dir = dirname(dir)
      continue
    }
    if (!st.isDirectory()) fail(spool, Object.assign(new Error(), { code: `${dir} is not a directory` }))
    break
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d, { mode: DIR_MODE })
      fs.chmodSync(d, DIR_MODE)
    } catch (err) {
      fail(spool, err)
    }
  }
  try {
    fs.accessSync(spool, fs.constants.W_OK | fs.constants.R_OK | fs.constants.X_OK)
  } catch (err) {
    fail(spool, err)
  }
  if (missing.length === 0) {
    const mode = fs.statSync(spool).mode & 0o777
    if ((mode & 0o077) !== 0) {
      log.warn({ spool, mode: mode.toString(8) }, 'spool directory is accessible to other users: chmod 700 it to keep payloads private')
    }
  }
  return spool
}
