/**
 * The setup the client tests share: a real server process and a StarlingClient connected to it.
 * At `t`'s teardown the client is closed (first, so no request is left hanging), the server
 * stopped and its spool removed. One per test file:
 *
 *     let server: RunningServer, client: StarlingClient, addr: string
 *     t.before(async () => ({ server, client, addr } = await startClientServer(t)))
 */
import { StarlingClient, type StarlingClientOptions } from '../../src/index.js'
import { removeDir, startServer, type RunningServer, type ServerOptions } from './server.js'

export interface ClientServer {
  server: RunningServer
  client: StarlingClient
  /** `host:port` of the server, as the client labels it. */
  addr: string
}

export async function startClientServer(
  t: { teardown(fn: () => unknown): void },
  options: { server?: ServerOptions; client?: StarlingClientOptions } = {},
): Promise<ClientServer> {
  const server = await startServer(options.server)
  const addr = `${server.host}:${server.port}`
  const client = new StarlingClient(addr, options.client)
  t.teardown(async () => {
    await client.close()
    if (server.proc.exitCode === null && server.proc.signalCode === null) await server.stop()
    removeDir(server.spool)
  })
  return { server, client, addr }
}
