/**
 * The dashboard in a real headless browser (Debian's chromium, driven by puppeteer-core): the page
 * loads with no console errors and no request leaving the server, shows a queue just created,
 * and its count changes after a memcached set. Auth is on, so the page also proves that the
 * browser's Basic credentials carry to its own polling. A screenshot is kept in test/artifacts/.
 */
import t from 'tap'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import puppeteer, { type Browser, type Page } from 'puppeteer-core'
import { ROOT, serverFor } from '../helpers/server.js'
import { RawClient } from '../helpers/textClient.js'
import { httpPortOf, request } from '../helpers/http.js'

const CHROMIUM = '/usr/bin/chromium'
const ARTIFACTS = join(ROOT, 'test', 'artifacts')

async function cellText(page: Page, queue: string, cls: string): Promise<string | null> {
  return page.evaluate(
    (q, c) => {
      for (const tr of document.querySelectorAll('#queues tbody tr')) {
        if ((tr as HTMLElement).dataset.queue === q) return tr.querySelector(`td.${c}`)?.textContent ?? null
      }
      return null
    },
    queue,
    cls,
  )
}

async function waitForCell(page: Page, queue: string, cls: string, want: string): Promise<void> {
  const deadline = Date.now() + 20_000
  let last: string | null = null
  while (Date.now() < deadline) {
    last = await cellText(page, queue, cls)
    if (last === want) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`queue ${queue} ${cls}: wanted ${want}, last saw ${last}`)
}

t.test('the dashboard shows queues live, without console errors', async (t) => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (.ci/run does)`)
  const s = await serverFor(t, { config: { http: { port: 0 }, auth: { users: { ops: 'secret' }, allow_text_unauthenticated: true } } })
  const port = httpPortOf(s)
  const profile = mkdtempSync(join(tmpdir(), 'starling-chromium-'))
  const browser: Browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profile}`,
    ],
    protocolTimeout: 60_000,
  })
  t.teardown(async () => {
    await browser.close()
    rmSync(profile, { recursive: true, force: true })
  })
  const page = await browser.newPage()
  const problems: string[] = []
  const elsewhere: string[] = []
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warn') problems.push(`console.${msg.type()}: ${msg.text()}`)
  })
  page.on('pageerror', (err) => problems.push(`page error: ${(err as Error).message}`))
  page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()} ${req.failure()?.errorText}`))
  page.on('request', (req) => {
    const url = req.url()
    if (!url.startsWith(`http://127.0.0.1:${port}/`) && !url.startsWith('data:')) elsewhere.push(url)
  })
  await page.setViewport({ width: 1100, height: 700 })
  await page.authenticate({ username: 'ops', password: 'secret' })

  // A queue created just before the page loads, with one item.
  const auth = { port, auth: 'ops:secret' }
  t.equal((await request(auth, '/queues/dash-orders', { method: 'POST', body: 'one' })).status, 201)
  const response = await page.goto(`http://127.0.0.1:${port}/`, { waitUntil: 'load', timeout: 60_000 })
  t.equal(response?.status(), 200)
  await waitForCell(page, 'dash-orders', 'items', '1')
  t.pass('the new queue is listed with its count')

  // A memcached set changes the count on the page, without a reload.
  const mc = await RawClient.connect(s.port)
  t.teardown(() => mc.close())
  t.equal(await mc.set('dash-orders', 'two'), 'STORED')
  t.equal(await mc.set('dash-orders', 'three'), 'STORED')
  await waitForCell(page, 'dash-orders', 'items', '3')
  t.pass('the count follows a set')

  // A queue created while the page is open appears too; in/out rates become numbers.
  t.equal(await mc.set('dash-late', 'x'), 'STORED')
  await waitForCell(page, 'dash-late', 'items', '1')
  t.match(await cellText(page, 'dash-orders', 'in-rate'), /^[0-9.]+$/)
  t.match(await page.$eval('#status', (e) => e.textContent ?? ''), /2 queues, updated/)
  t.ok(await page.$eval('#chart', (c) => (c as HTMLCanvasElement).width > 0), 'the rate chart is drawn')

  // A few seconds of traffic, so that the screenshot shows the rate chart moving.
  const until = Date.now() + 4000
  let failures = 0
  while (Date.now() < until) {
    for (let i = 0; i < 3; i++) if ((await mc.set('dash-orders', `item-${i}`)) !== 'STORED') failures++
    if ((await mc.get('dash-orders')) === null) failures++
    await new Promise((r) => setTimeout(r, 50))
  }
  t.equal(failures, 0, 'traffic for the chart went through')
  await new Promise((r) => setTimeout(r, 1500))

  mkdirSync(ARTIFACTS, { recursive: true })
  const shot = join(ARTIFACTS, 'dashboard.png')
  await page.screenshot({ path: shot, fullPage: true })
  t.ok(existsSync(shot))
  t.comment(`dashboard screenshot: ${shot}`)
  console.log(`dashboard screenshot: ${shot}`)

  t.same(problems, [], 'no console errors, page errors or failed requests')
  t.same(elsewhere, [], 'nothing is loaded from anywhere but the server')
})
