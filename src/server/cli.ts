/**
 * `starling [options]`: Starling's flags (-h is the host, so help is --help / -?), a YAML config
 * under `starling:`, flags over file. Configuration errors are one line and exit status 1.
 */
import { spawn } from 'node:child_process'
import { closeSync, openSync, writeSync } from 'node:fs'
import { resolve as resolvePath } from 'node:path'
import yargs from 'yargs'
import { ConfigError } from './errors.js'
import { DEFAULT_DAEMON_PID_FILE, defaultConfig, loadConfigFile, type ServerConfig } from './config.js'
import { createLogger, levelForVerbosity, type Logger } from './logger.js'
import { checkPidFile, PidFile } from './pidFile.js'
import { reloadChanges } from './reload.js'
import { StarlingServer } from './server.js'
import { VERSION } from './version.js'

interface Flags {
  config?: string
  queue_path?: string
  host?: string
  port?: number
  d?: boolean
  pid?: string
  user?: string
  group?: string
  log?: string
  syslog?: string
  v?: number
  timeout?: number
  version?: boolean
  help?: boolean
  daemonized?: boolean
}

function parser(argv: string[]) {
  return yargs(argv)
    .scriptName('starling')
    .usage('Usage: starling [options]\n\nA durable queue server speaking the memcached protocols.')
    .help(false)
    .version(false)
    .strict()
    .exitProcess(false)
    .fail((msg, err) => {
      throw new ConfigError(msg ?? err?.message ?? 'bad arguments')
    })
    .option('config', { alias: 'f', type: 'string', describe: 'YAML config file (settings under starling:)' })
    .option('queue_path', { alias: 'q', type: 'string', describe: 'spool directory [./spool]' })
    .option('host', { alias: 'h', type: 'string', describe: 'listen address [127.0.0.1]' })
    .option('port', { alias: 'p', type: 'number', describe: 'TCP port [22122]' })
    .option('d', { type: 'boolean', describe: 'run as a daemon (detach, write a pid file)' })
    .option('pid', { alias: 'P', type: 'string', describe: `pid file [${DEFAULT_DAEMON_PID_FILE} with -d]` })
    .option('user', { alias: 'u', type: 'string', describe: 'user to run as after binding' })
    .option('group', { alias: 'g', type: 'string', describe: 'group to run as after binding' })
    .option('log', { alias: 'L', type: 'string', describe: 'log file (pino JSON lines) [stderr]' })
    .option('syslog', { alias: 'l', type: 'string', describe: 'syslog channel (accepted for compatibility)' })
    .option('v', { type: 'count', describe: 'more verbose (repeatable)' })
    .option('timeout', { alias: 't', type: 'number', describe: 'disconnect idle clients after SECONDS; 0 disables [0]' })
    .option('version', { alias: 'V', type: 'boolean', describe: 'print the version' })
    .option('help', { alias: '?', type: 'boolean', describe: 'show this help' })
    .option('daemonized', { type: 'boolean', hidden: true })
}

function checkInt(name: string, v: number | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined
  if (!Number.isInteger(v) || v < min || v > max) throw new ConfigError(`option --${name} must be an integer from ${min} to ${max}`)
  return v
}

/** Build the effective configuration: defaults, then the file, then flags. */
export function resolveConfig(flags: Flags): ServerConfig {
  const config = flags.config ? loadConfigFile(flags.config) : defaultConfig()
  if (flags.queue_path !== undefined) config.queuePath = flags.queue_path
  if (flags.host !== undefined) config.host = flags.host
  const port = checkInt('port', flags.port, 0, 65535)
  if (port !== undefined) config.port = port
  if (flags.d) config.daemonize = true
  if (flags.pid !== undefined) config.pidFile = flags.pid
  if (flags.user !== undefined) config.user = flags.user
  if (flags.group !== undefined) config.group = flags.group
  if (flags.log !== undefined) config.logFile = flags.log
  if (flags.syslog !== undefined) config.syslogChannel = flags.syslog
  const timeout = checkInt('timeout', flags.timeout, 0, 86400 * 365)
  if (timeout !== undefined) config.timeoutSec = timeout
  config.logLevel = levelForVerbosity(config.logLevel, flags.v ?? 0)
  if (config.daemonize && config.pidFile === null) config.pidFile = DEFAULT_DAEMON_PID_FILE
  return config
}

/** The daemon tells its parent it is listening by writing to this inherited pipe. */
const READY_FD = 3

/** Detach: start ourselves again without -d, wait until the child says it is listening. */
async function daemonize(argv: string[], config: ServerConfig, pidGiven: boolean): Promise<number> {
  const args = argv.filter((a) => a !== '-d' && a !== '--d')
  if (!pidGiven) args.push('-P', config.pidFile!)
  const log = config.logFile ? openSync(config.logFile, 'a', 0o600) : 'ignore'
  const child = spawn(process.execPath, [process.argv[1]!, ...args, '--daemonized'], {
    detached: true,
    stdio: ['ignore', log, log, 'pipe'],
  })
  const ready = child.stdio[READY_FD]!
  const status = await new Promise<number>((resolve) => {
    let said = ''
    let settled = false
    const settle = (code: number, message?: string): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (message) process.stderr.write(`starling: ${message}\n`)
      resolve(code)
    }
    const timer = setTimeout(() => settle(1, 'daemon did not start within 60 s'), 60_000)
    // The daemon writes `ready` once listening, or `error <message>` before it exits.
    ready.on('data', (chunk: Buffer) => {
      said += chunk.toString()
      if (said.startsWith('ready')) settle(0)
      else if (said.startsWith('error ') && said.endsWith('\n')) settle(1, said.slice(6).trim())
    })
    child.once('exit', (code) => {
      settle(1, `daemon exited with status ${code} during start-up${config.logFile ? ` (see ${config.logFile})` : ''}`)
    })
  })
  ready.destroy()
  child.unref()
  return status
}

/** In the daemon: tell the waiting parent we are listening, or why we are not (it may be gone). */
function tellParent(message: string): void {
  try {
    writeSync(READY_FD, message + '\n')
    closeSync(READY_FD)
  } catch {
    /* parent gone */
  }
}

/** Set in the daemon child: start-up errors go to the waiting parent's terminal too. */
let daemonChild = false

function dropPrivileges(config: ServerConfig): void {
  try {
    if (config.group) process.setgid!(config.group)
    if (config.user) process.setuid!(config.user)
  } catch (err) {
    throw new ConfigError(`cannot switch to user/group ${config.user ?? ''}:${config.group ?? ''}: ${(err as Error).message}`)
  }
}

/** Run the CLI. Resolves with the exit status when the server has stopped (or at once on error). */
export async function runCli(argv: string[]): Promise<number> {
  let flags: Flags
  let config: ServerConfig
  try {
    const y = parser(argv)
    flags = (await y.parseAsync()) as Flags
    daemonChild = flags.daemonized === true
    if (flags.help) {
      process.stdout.write((await y.getHelp()) + '\n')
      return 0
    }
    if (flags.version) {
      process.stdout.write(`starling ${VERSION}\n`)
      return 0
    }
    config = resolveConfig(flags)
  } catch (err) {
    return fail(err)
  }
  if (config.daemonize && !flags.daemonized) {
    // Say it here, on the operator's terminal; the daemon's own claim below is the race-free one.
    try {
      checkPidFile(config.pidFile!)
    } catch (err) {
      return fail(err)
    }
    return daemonize(argv, config, flags.pid !== undefined)
  }

  let log: Logger
  try {
    log = createLogger(config.logLevel, config.logFile)
  } catch (err) {
    return fail(new ConfigError(`cannot open log file ${config.logFile}: ${(err as Error).message}`))
  }
  // Claimed before the spool is touched: a live pid file means another server; leave everything.
  let pidFile: PidFile | null = null
  try {
    if (config.pidFile) pidFile = PidFile.claim(config.pidFile, log)
  } catch (err) {
    log.flush?.()
    return fail(err)
  }
  const server = new StarlingServer(config, log, () => void shutdown('shutdown command'))
  let resolveExit: (code: number) => void = () => {}
  const exited = new Promise<number>((r) => (resolveExit = r))
  let stopping = false
  const shutdown = async (reason: string): Promise<void> => {
    if (stopping) return
    stopping = true
    log.info({ reason }, 'shutting down')
    let code = 0
    try {
      await server.stop()
    } catch (err) {
      // logged, and the exit status says so: a supervisor must not take this for a clean stop
      log.error({ err: (err as Error).message }, 'shutdown did not complete cleanly')
      code = 1
    }
    pidFile?.release()
    log.info({ exitCode: code }, 'stopped')
    resolveExit(code)
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGINT', () => void shutdown('SIGINT'))
  process.on('SIGHUP', () => {
    if (!flags.config) return
    try {
      const next = resolveConfig(flags)
      const changes = reloadChanges(server.settings, next)
      server.reload(next)
      log.info({ config: flags.config, applied: changes.applied, needRestart: changes.needRestart }, 'configuration reloaded')
      if (changes.needRestart.length > 0) {
        log.warn({ config: flags.config, settings: changes.needRestart }, `changed settings need a restart: ${changes.needRestart.join(', ')}`)
      }
    } catch (err) {
      log.error({ err: (err as Error).message }, 'configuration reload failed; keeping the old one')
    }
  })

  try {
    const at = await server.start()
    dropPrivileges(config)
    log.info(
      { host: at.host, port: at.port, tlsPort: at.tlsPort, httpPort: at.httpPort, spool: server.settings.queuePath, config: flags.config ? resolvePath(flags.config) : null, version: VERSION },
      'listening',
    )
    if (flags.daemonized) tellParent('ready')
  } catch (err) {
    pidFile?.release()
    if (err instanceof ConfigError) {
      log.flush?.()
      return fail(err)
    }
    throw err
  }
  return exited
}

function fail(err: unknown): number {
  const msg = err instanceof Error ? err.message : String(err)
  process.stderr.write(`starling: ${msg}\n`)
  if (daemonChild) tellParent(`error ${msg.replace(/\n/g, ' ')}`)
  return 1
}
