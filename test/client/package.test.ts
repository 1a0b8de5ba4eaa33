/**
 * The client is importable from the package root, as users import it.
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { ROOT } from '../helpers/server.js'

t.test("import { StarlingClient } from 'starling-queue'", async (t) => {
  const code = `
    import * as pkg from 'starling-queue'
    const c = new pkg.StarlingClient()
    console.log(JSON.stringify({
      servers: c.servers,
      exports: ['StarlingClient', 'ConnectionError', 'ServerError', 'TimeoutError', 'Poller', 'SERIALIZER_FLAGS'].filter((n) => n in pkg),
      flags: pkg.SERIALIZER_FLAGS,
    }))
    await c.close()
  `
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } })
  t.equal(r.status, 0, r.stderr)
  t.same(JSON.parse(r.stdout), {
    servers: ['127.0.0.1:22122'],
    exports: ['StarlingClient', 'ConnectionError', 'ServerError', 'TimeoutError', 'Poller', 'SERIALIZER_FLAGS'],
    flags: { raw: 0, json: 0x4a534f4e, yaml: 0x59414d4c },
  })
})
