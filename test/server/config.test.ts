/**
 * config.ts: the defaults, every key's parsing (Starling's names and ours), sizes with units,
 * per-queue settings and how they merge, and a one-line ConfigError naming the key for anything
 * wrong. Pure functions, plus real files for loadConfigFile.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { applyConfigDocument, DEFAULT_QUEUE_SETTINGS, defaultConfig, loadConfigFile, parseSync, queueSettings } from '../../src/server/config.js'
import { ConfigError } from '../../src/server/errors.js'
import { tempSpool } from '../helpers/journal.js'

const MiB = 1024 * 1024
const apply = (starling: unknown) => applyConfigDocument(defaultConfig(), { starling })

t.test('defaults: Starling\'s port and spool, memcached\'s limits', async (t) => {
  const c = defaultConfig()
  t.match(c, {
    host: '127.0.0.1',
    port: 22122,
    queuePath: './spool',
    timeoutSec: 0,
    maxItemSize: MiB,
    maxKeyLength: 250,
    maxLineLength: 2048,
    enableFlushAll: false,
    enableShutdown: false,
    auth: null,
    tls: null,
  })
  t.same(c.queueDefaults, DEFAULT_QUEUE_SETTINGS)
  t.equal(c.queueDefaults.maxJournalSize, 16 * MiB)
  t.equal(c.queueDefaults.sync, 'never')
  t.not(defaultConfig().queueDefaults, defaultConfig().queueDefaults, 'each config gets its own copy')
})

t.test('Starling\'s keys and their aliases', async (t) => {
  t.match(apply({ port: 11211, host: '0.0.0.0', queue_path: '/q', pid_file: '/p', timeout: 30, logger: '/l', daemonize: true, user: 'u', group: 'g' }), {
    port: 11211,
    host: '0.0.0.0',
    queuePath: '/q',
    pidFile: '/p',
    timeoutSec: 30,
    logFile: '/l',
    daemonize: true,
    user: 'u',
    group: 'g',
  })
  t.equal(apply({ path: '/other' }).queuePath, '/other')
  t.equal(apply({ log_file: '/x' }).logFile, '/x')
  t.equal(apply({ log_level: 'WARNING' }).logLevel, 'warn')
  t.equal(apply({ port: '2000' }).port, 2000, 'a number given as a string')
})

t.test('sizes take units; some limits have a floor', async (t) => {
  t.equal(apply({ max_item_size: '2MB' }).queueDefaults.maxItemSize, 2 * MiB)
  t.equal(apply({ max_memory_size: '512k' }).queueDefaults.maxMemorySize, 512 * 1024)
  t.equal(apply({ max_size: '1 GiB' }).queueDefaults.maxSize, 1024 * MiB)
  t.equal(apply({ max_memory_total: 1000 }).maxMemoryTotal, 1000)
  t.equal(apply({ max_journal_size: 10 }).queueDefaults.maxJournalSize, 4096, 'journal segments have a floor of 4 KiB')
  t.equal(apply({ max_output_bytes: 1 }).maxOutputBytes, 65536)
  t.throws(() => apply({ max_size: '12 parsecs' }), { message: /starling\.max_size must be a size in bytes/ })
})

t.test('sync: always, never or milliseconds', async (t) => {
  t.equal(parseSync('k', 'always'), 'always')
  t.equal(parseSync('k', 'never'), 'never')
  t.equal(parseSync('k', 200), 200)
  t.equal(parseSync('k', '50'), 50)
  t.throws(() => parseSync('k', 0), ConfigError)
  t.equal(defaultConfig().queueDefaults.maxPollWaitMs, 50)
  t.equal(apply({ max_poll_wait: 0 }).queueDefaults.maxPollWaitMs, 0, 'max_poll_wait 0: a poll waits for one round of fsyncs only')
  t.throws(() => apply({ max_poll_wait: 60_001 }), { message: /starling\.max_poll_wait must be an integer from 0 to 60000/ })
  t.throws(() => parseSync('k', 'sometimes'), { message: 'config key k must be always, never or a number of milliseconds' })
})

t.test('per-queue settings override the defaults for their queue only', async (t) => {
  const c = apply({ max_items: 10, sync: 'always', queues: { big: { max_items: 0, max_item_size: '4MB' }, 'a+b': { expire_to: 'dead' } } })
  t.equal(queueSettings(c, 'big').maxItems, 0)
  t.equal(queueSettings(c, 'big').sync, 'always', 'unset keys come from the defaults')
  t.equal(queueSettings(c, 'other').maxItems, 10)
  t.equal(queueSettings(c, 'a+b').expireTo, 'dead')
  t.equal(c.maxItemSize, 4 * MiB, 'the protocol item limit is the largest any queue accepts')
})

t.test('auth and tls sections', async (t) => {
  const c = apply({ auth: { users: { alice: 'pw' }, allow_text_unauthenticated: true }, tls: { port: 22123, cert: 'c.pem', key: 'k.pem' } })
  t.match(c.auth, { users: { alice: 'pw' }, allowTextUnauthenticated: true })
  t.match(c.tls, { port: 22123, cert: 'c.pem', key: 'k.pem', host: null, ca: null, requireClientCert: false })
  t.throws(() => apply({ auth: {} }), { message: 'config key starling.auth.users is required' })
  t.throws(() => apply({ auth: { users: {} } }), { message: /starling\.auth\.users must be a map/ })
  t.throws(() => apply({ tls: { port: 1, cert: 'c' } }), { message: 'config key starling.tls.key is required' })
  t.throws(() => apply({ tls: { port: 1, cert: 'c', key: 'k', colour: 'blue' } }), { message: 'unknown config key starling.tls.colour' })
})

t.test('reclaim_after_deletes: 1000 by default, 0 turns the reclaim off', async (t) => {
  t.equal(defaultConfig().reclaimAfterDeletes, 1000)
  t.equal(apply({ reclaim_after_deletes: 0 }).reclaimAfterDeletes, 0)
  t.equal(apply({ reclaim_after_deletes: '5000' }).reclaimAfterDeletes, 5000)
})

t.test('anything wrong is a ConfigError naming the key', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ starling: { colour: 'blue' } }, /^unknown config key starling\.colour$/],
    [{ other: {} }, /^unknown config key other \(settings live under starling:\)$/],
    [{ starling: { port: 70000 } }, /^config key starling\.port must be an integer from 0 to 65535$/],
    [{ starling: { port: 'http' } }, /^config key starling\.port must be an integer/],
    [{ starling: { reclaim_after_deletes: -1 } }, /^config key starling\.reclaim_after_deletes must be an integer from 0 to/],
    [{ starling: { enable_shutdown: 'maybe' } }, /^config key starling\.enable_shutdown must be true or false$/],
    [{ starling: { log_level: 'loud' } }, /^config key starling\.log_level must be one of/],
    [{ starling: { queues: { q: { max_itemz: 1 } } } }, /^unknown config key starling\.queues\.q\.max_itemz$/],
    [{ starling: { queues: [] } }, /^config key starling\.queues must be a map/],
    [{ starling: 5 }, /^config key starling must be a map$/],
    [[1, 2], /^config file must be a YAML map/],
  ]
  for (const [doc, message] of cases) t.throws(() => applyConfigDocument(defaultConfig(), doc), { name: 'ConfigError', message }, JSON.stringify(doc))
  t.same(applyConfigDocument(defaultConfig(), null), defaultConfig(), 'an empty file changes nothing')
  t.same(applyConfigDocument(defaultConfig(), { starling: null }), defaultConfig())
})

t.test('loadConfigFile: YAML from disk, with the file and line in its errors', async (t) => {
  const dir = tempSpool(t)
  const good = join(dir, 'good.yml')
  writeFileSync(good, 'starling:\n  port: 23000\n  queues:\n    slow:\n      sync: 100\n')
  const c = loadConfigFile(good)
  t.equal(c.port, 23000)
  t.equal(queueSettings(c, 'slow').sync, 100)
  const bad = join(dir, 'bad.yml')
  writeFileSync(bad, 'starling:\n  port: 1\n   host: x\n')
  t.throws(() => loadConfigFile(bad), { name: 'ConfigError', message: /^config file .*bad\.yml is not valid YAML \(line \d+\)$/ })
  t.throws(() => loadConfigFile(join(dir, 'missing.yml')), { name: 'ConfigError', message: /^cannot read config file .*missing\.yml: ENOENT$/ })
})
