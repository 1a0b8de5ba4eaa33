#!/usr/bin/env node
/** Entry point of the `starling` command. */
import { runCli } from './cli.js'

runCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`starling: ${err.message}\n`)
    process.exit(1)
  },
)
