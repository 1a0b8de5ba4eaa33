/** The server as a library: embed it, or run it with `runCli`. */
export { StarlingServer, type Listening } from './server.js'
export { runCli, resolveConfig } from './cli.js'
export { defaultConfig, loadConfigFile, applyConfigDocument, queueSettings, type ServerConfig, type QueueSettings } from './config.js'
export { createLogger } from './logger.js'
export { StarlingError, ConfigError, type ErrorCode } from './errors.js'
export { VERSION } from './version.js'
