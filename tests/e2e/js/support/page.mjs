// Drives chunkd's upload page in Debian's chromium (playwright-core, no downloaded
// browsers): opens it, picks files, and records the upload requests it sends.
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import http from 'node:http'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

import { randomData, tempDir } from './chunkd.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..')

export async function launch () {
  const executablePath = process.env.CHUNKD_CHROMIUM ?? '/usr/bin/chromium'
  if (!fs.existsSync(executablePath)) throw new Error(`no browser at ${executablePath}: run scripts/test-all.sh (it installs Debian's chromium)`)
  // Root (as in CI) cannot use chromium's sandbox.
  return chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-dev-shm-usage'] })
}

/** A file of `size` random bytes on disk, for the page to pick. */
export function makeFile (name, size, dir = tempDir()) {
  const file = path.join(dir, name)
  fs.writeFileSync(file, randomData(size))
  return file
}

/**
 * The page at `url` in a fresh tab of `context`, ready for files, with every request
 * and response to the upload endpoints recorded in order (`log`).
 */
export async function openPage (context, url) {
  const page = await context.newPage()
  const log = []
  page.on('pageerror', (error) => log.push({ kind: 'pageerror', error: String(error) }))
  page.on('request', (r) => {
    if (isUpload(r.url())) log.push({ kind: 'request', method: r.method(), url: r.url(), headers: r.headers() })
  })
  page.on('response', (r) => {
    if (isUpload(r.url())) log.push({ kind: 'response', method: r.request().method(), url: r.url(), status: r.status() })
  })
  await page.goto(url)
  await page.locator('#notice', { hasText: 'to upload' }).waitFor()
  return { page, log }
}

const isUpload = (url) => !new URL(url).pathname.includes('/ui/') && new URL(url).pathname !== '/'

/** Picks files with the Dashboard's file input, as the "browse" link does. */
export async function pick (page, ...files) {
  const input = page.locator('input.uppy-Dashboard-input:not([webkitdirectory])').first()
  // With files already listed, the inputs are behind the Dashboard's "Add more".
  if (await input.count() === 0) await page.getByRole('button', { name: 'Add more' }).click()
  await input.setInputFiles(files)
}

/** The page has brought back the session of its last load (Golden Retriever). */
export async function restored (page) {
  await page.locator('.uppy-Dashboard-serviceMsg', { hasText: 'Session restored' }).waitFor()
}

/** The page says every file it was given is stored. */
export async function done (page, count, ms = 60_000) {
  await page.locator('#notice', { hasText: `Done: ${count} file(s) stored` }).waitFor({ timeout: ms })
}

/** The finished list's links: name to download URL. */
export async function finishedLinks (page) {
  return page.locator('#finished a').evaluateAll((links) => links.map((a) => ({ name: a.textContent, url: a.href })))
}

/** Slows uploads from this tab to `bytesPerSecond` (chromium's own network emulation). */
export async function throttle (page, bytesPerSecond, offline = false) {
  const cdp = await page.context().newCDPSession(page)
  await cdp.send('Network.enable')
  await cdp.send('Network.emulateNetworkConditions', {
    offline, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerSecond
  })
  return cdp
}

/** Screenshots go to docs/images with CHUNKD_UPDATE_SCREENSHOTS=1, else a temp folder. */
export function screenshotPath (name) {
  const dir = process.env.CHUNKD_UPDATE_SCREENSHOTS ? path.join(root, 'docs/images') : path.join(os.tmpdir(), 'chunkd-screenshots')
  fs.mkdirSync(dir, { recursive: true })
  return path.join(dir, name)
}

/** A free loopback port (for a server that must come back on the same address). */
export function freePort () {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/**
 * A pass-through to the test S3 service that answers the browser's CORS preflights and
 * exposes ETag, which the service itself does not do. It forwards the request line,
 * headers (Host included, so signatures still match) and body unchanged.
 */
export function corsProxy (target) {
  const upstream = new URL(target)
  // Its own pool, ended with the proxy: the global one's idle sockets would keep the
  // test process alive.
  const agent = new http.Agent({ keepAlive: true })
  const server = http.createServer((req, res) => {
    const cors = {
      'access-control-allow-origin': req.headers.origin ?? '*',
      'access-control-expose-headers': 'ETag',
      'access-control-allow-methods': 'GET, PUT, POST, DELETE, HEAD',
      'access-control-allow-headers': req.headers['access-control-request-headers'] ?? '*',
      'access-control-max-age': '600'
    }
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method']) {
      res.writeHead(204, cors).end()
      return
    }
    const forwarded = http.request({
      agent, host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers
    }, (answer) => {
      res.writeHead(answer.statusCode, { ...answer.headers, ...(req.headers.origin ? cors : {}) })
      answer.pipe(res)
    })
    forwarded.on('error', () => res.destroy())
    req.pipe(forwarded)
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => { server.closeAllConnections(); agent.destroy(); server.close(resolve) })
  })))
}
