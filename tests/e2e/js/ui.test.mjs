// The upload page at `/` in a real browser (Debian's chromium through playwright-core):
// files picked, paused, reloaded, re-picked and resumed, the server restarted under
// it, refusals worded, and browser-direct S3 resumed from the bucket's parts. Every
// stored file is checked by sha256 against what the browser was given.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { createHmac } from 'node:crypto'

import { startChunkd, sha256, download, storedFile, MiB, until, tempDir } from './support/chunkd.mjs'
import { launch, makeFile, openPage, pick, restored, done, finishedLinks, throttle, screenshotPath, freePort, corsProxy } from './support/page.mjs'

let browser
before(async () => { browser = await launch() })
after(async () => { await browser?.close() })

const hash = (file) => sha256(fs.readFileSync(file))
const patches = (log) => log.filter((e) => e.kind === 'request' && e.method === 'PATCH')
const creations = (log, path) => log.filter((e) => e.kind === 'request' && e.method === 'POST' && new URL(e.url).pathname === path)
const answered = (log, method) => log.filter((e) => e.kind === 'response' && e.method === method && e.status < 300)

/** What the server stored for each finished link equals the file of that name. */
async function assertStored (server, page, files) {
  const links = await finishedLinks(page)
  for (const file of files) {
    const name = file.split('/').pop()
    const link = links.find((l) => l.name === name)
    assert.ok(link, `${name} is listed as finished`)
    assert.equal(sha256(await download(link.url)), hash(file), `${name} served`)
    assert.equal(sha256(storedFile(server, link.url)), hash(file), `${name} stored`)
  }
}

test('one file and then many, picked with the keyboard, stored byte for byte', async () => {
  const server = await startChunkd()
  const context = await browser.newContext()
  try {
    const { page } = await openPage(context, `${server.origin}/`)
    const one = makeFile('report.pdf', 3 * MiB + 17)
    // The Dashboard's "browse" control takes the keyboard: focus it, press Enter.
    const chooser = page.waitForEvent('filechooser')
    await page.locator('.uppy-Dashboard-browse').first().focus()
    await page.keyboard.press('Enter')
    await (await chooser).setFiles(one)
    await done(page, 1)
    await assertStored(server, page, [one])

    const dir = tempDir()
    const many = [1, 2 * MiB, 5 * MiB + 3, 700 * 1024, 64].map((size, i) => makeFile(`photo-${i}.jpg`, size, dir))
    await pick(page, ...many)
    await done(page, many.length)
    await assertStored(server, page, many)
    await page.screenshot({ path: screenshotPath('ui-page.png'), fullPage: true })

    // Readable on a phone: nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 })
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone`)
    await page.screenshot({ path: screenshotPath('ui-phone.png') })
  } finally {
    await context.close()
    await server.stop()
  }
})

test('paused, then resumed: the rest is sent from the stored offset', async () => {
  const server = await startChunkd({ env: { CHUNKD_UI__CHUNK_SIZE: String(MiB) } })
  const context = await browser.newContext()
  try {
    const { page, log } = await openPage(context, `${server.origin}/`)
    await throttle(page, 4 * MiB)
    const file = makeFile('video.mp4', 16 * MiB)
    await pick(page, file)
    await until(() => answered(log, 'PATCH').length >= 2, 30_000, 'two chunks stored')
    await page.getByRole('button', { name: 'Pause', exact: false }).first().click()
    await page.locator('.uppy-StatusBar', { hasText: 'Paused' }).waitFor()
    await page.screenshot({ path: screenshotPath('ui-paused.png') })
    const sent = patches(log).length
    await page.getByRole('button', { name: 'Resume', exact: false }).first().click()
    await done(page, 1)
    const after = patches(log).slice(sent)
    assert.ok(after.length > 0, 'chunks were sent after resuming')
    assert.ok(Number(after[0].headers['upload-offset']) >= 2 * MiB, `resumed at ${after[0].headers['upload-offset']}`)
    assert.equal(creations(log, '/files').length, 1, 'one upload, created once')
    await assertStored(server, page, [file])
  } finally {
    await context.close()
    await server.stop()
  }
})

for (const protocol of ['tus', 'ietf']) {
  test(`${protocol}: reloaded mid-upload, the same file picked again continues from the stored offset`, async () => {
    const endpoint = protocol === 'tus' ? '/files' : '/uploads'
    const server = await startChunkd({ env: { CHUNKD_UI__CHUNK_SIZE: String(MiB), CHUNKD_UI__PROTOCOL: protocol } })
    const context = await browser.newContext()
    try {
      const first = await openPage(context, `${server.origin}/`)
      await throttle(first.page, 4 * MiB)
      // Larger than what Golden Retriever keeps in the browser: it must be picked again.
      const file = makeFile('backup.tar', 14 * MiB)
      await pick(first.page, file)
      await until(() => answered(first.log, 'PATCH').length >= 3, 30_000, 'three chunks stored')
      await first.page.close()

      const { page, log } = await openPage(context, `${server.origin}/`)
      await restored(page)
      await pick(page, file)
      await done(page, 1)
      assert.equal(creations(log, endpoint).length, 0, 'no new upload after the reload')
      const resumed = patches(log)
      assert.ok(resumed.length > 0)
      const offset = Number(resumed[0].headers['upload-offset'])
      assert.ok(offset >= 3 * MiB, `continued at ${offset}, not from zero`)
      assert.ok(resumed.length <= 14 - 3, `${resumed.length} chunks sent after the reload`)
      await assertStored(server, page, [file])
    } finally {
      await context.close()
      await server.stop()
    }
  })
}

test('chunkd killed and restarted mid-upload: the page retries and finishes', async () => {
  const listen = `127.0.0.1:${await freePort()}`
  const dataDir = tempDir()
  const env = { CHUNKD_UI__CHUNK_SIZE: String(MiB) }
  let server = await startChunkd({ dataDir, listen, env })
  const context = await browser.newContext()
  try {
    const { page, log } = await openPage(context, `${server.origin}/`)
    await throttle(page, 4 * MiB)
    const file = makeFile('dataset.csv', 12 * MiB)
    await pick(page, file)
    await until(() => answered(log, 'PATCH').length >= 2, 30_000, 'two chunks stored')
    await server.crash()
    server = await startChunkd({ dataDir, listen, env })
    await done(page, 1, 90_000)
    assert.equal(creations(log, '/files').length, 1, 'the same upload, continued')
    await assertStored(server, page, [file])
  } finally {
    await context.close()
    await server.stop()
  }
})

test('the network lost mid-upload: the page says so and goes on when it is back', async () => {
  const server = await startChunkd({ env: { CHUNKD_UI__CHUNK_SIZE: String(MiB) } })
  const context = await browser.newContext()
  try {
    const { page, log } = await openPage(context, `${server.origin}/`)
    const cdp = await throttle(page, 4 * MiB)
    const file = makeFile('thesis.pdf', 10 * MiB)
    await pick(page, file)
    await until(() => answered(log, 'PATCH').length >= 2, 30_000, 'two chunks stored')
    const conditions = { latency: 0, downloadThroughput: -1, uploadThroughput: 4 * MiB }
    await cdp.send('Network.emulateNetworkConditions', { ...conditions, offline: true })
    await page.locator('#notice.error', { hasText: 'network is gone' }).waitFor()
    await cdp.send('Network.emulateNetworkConditions', { ...conditions, offline: false })
    await done(page, 1, 90_000)
    assert.equal(creations(log, '/files').length, 1, 'the same upload, continued')
    await assertStored(server, page, [file])
  } finally {
    await context.close()
    await server.stop()
  }
})

test('refusals are worded: over the size limit, before and by the server', async () => {
  const server = await startChunkd({ env: { CHUNKD_MAX_SIZE: String(MiB) } })
  const context = await browser.newContext()
  try {
    const { page } = await openPage(context, `${server.origin}/`)
    await pick(page, makeFile('huge.iso', 2 * MiB))
    await page.locator('#notice.error', { hasText: 'exceeds maximum allowed size' }).waitFor()

    // A page that does not know the limit meets the server's 413.
    const blind = await openPage(context, `${server.origin}/`)
    await blind.page.route('**/', async (route) => {
      const answer = await route.fetch()
      await route.fulfill({ response: answer, body: (await answer.text()).replace(/"maxSize":\d+/, '"maxSize":null') })
    })
    await blind.page.reload()
    await blind.page.locator('#notice', { hasText: 'to upload' }).waitFor()
    await pick(blind.page, makeFile('huge.iso', 2 * MiB))
    await blind.page.locator('#notice.error', { hasText: 'Too large' }).waitFor()
    assert.ok(blind.log.some((e) => e.kind === 'response' && e.status === 413), 'the server said 413')
    await blind.page.screenshot({ path: screenshotPath('ui-refused.png') })
  } finally {
    await context.close()
    await server.stop()
  }
})

test('with tokens: the page uploads as the token\'s user, whose files only that user reads', async () => {
  const key = 'k'.repeat(40)
  const server = await startChunkd({ env: { CHUNKD_AUTH__MODE: 'token', CHUNKD_AUTH__TOKEN_KEY: key, CHUNKD_AUTH__TOKEN_REQUIRE_EXP: 'false' } })
  const context = await browser.newContext()
  try {
    const b64 = (s) => Buffer.from(s).toString('base64url')
    const tokenOf = (user) => {
      const body = `${b64('{"alg":"HS256","typ":"JWT"}')}.${b64(JSON.stringify({ sub: user }))}`
      return `${body}.${createHmac('sha256', key).update(body).digest('base64url')}`
    }
    const { page } = await openPage(context, `${server.origin}/#token=${tokenOf('ada')}`)
    assert.ok(!page.url().includes('token='), 'the token is taken out of the address bar')
    const file = makeFile('notes.txt', 300 * 1024)
    await pick(page, file)
    await done(page, 1)
    const [link] = await finishedLinks(page)
    assert.equal((await fetch(link.url)).status, 404, 'nobody else reads it')
    assert.equal(sha256(storedFile(server, link.url)), hash(file))
    // The list's link fetches with the token and hands the file over.
    const saved = page.waitForEvent('download')
    await page.locator('#finished a').first().click()
    const downloaded = await (await saved).path()
    assert.equal(hash(downloaded), hash(file))
    // On another browser (nothing remembered), the server lists ada's file for ada.
    const elsewhere = await browser.newContext()
    try {
      const again = await openPage(elsewhere, `${server.origin}/#token=${tokenOf('ada')}`)
      await again.page.locator('#finished a', { hasText: 'notes.txt' }).waitFor()
      const [listed] = await finishedLinks(again.page)
      assert.equal(listed.url, link.url, 'the same upload, listed by the server')
    } finally {
      await elsewhere.close()
    }
    // Another user in the same browser sees none of ada's files.
    const other = await openPage(context, `${server.origin}/#token=${tokenOf('bob')}`)
    await other.page.locator('#finished-empty', { hasText: 'None yet' }).waitFor()
    assert.equal(await other.page.locator('#finished a').count(), 0)
  } finally {
    await context.close()
    await server.stop()
  }
})

test('browser-direct to S3: reloaded mid-upload, resumed from the parts in the bucket', async (t) => {
  const s3 = process.env.CHUNKD_TEST_S3_ENDPOINT
  if (!s3) {
    if (process.env.CI) assert.fail('CHUNKD_TEST_S3_ENDPOINT is not set: run scripts/test-all.sh')
    t.skip('no S3 service: run scripts/test-all.sh')
    return
  }
  const proxy = await corsProxy(s3)
  const bucket = `ui${Date.now().toString(36)}`
  const server = await startChunkd({
    env: {
      CHUNKD_STORE: 's3',
      CHUNKD_S3__ENDPOINT: proxy.url,
      CHUNKD_S3__BUCKET: bucket,
      CHUNKD_S3__ACCESS_KEY: process.env.CHUNKD_TEST_S3_ACCESS_KEY,
      CHUNKD_S3__SECRET_KEY: process.env.CHUNKD_TEST_S3_SECRET_KEY,
      CHUNKD_S3__CREATE_BUCKET: 'true',
      CHUNKD_UI__PROTOCOL: 's3'
    }
  })
  const context = await browser.newContext()
  try {
    const first = await openPage(context, `${server.origin}/`)
    await throttle(first.page, 6 * MiB)
    const file = makeFile('film.mkv', 26 * MiB) // six parts of 5 MiB
    await pick(first.page, file)
    await until(() => answered(first.log, 'PUT').length >= 2, 60_000, 'two parts in the bucket')
    await first.page.close()

    const { page, log } = await openPage(context, `${server.origin}/`)
    await restored(page)
    await pick(page, file)
    await done(page, 1, 90_000)
    assert.equal(creations(log, '/s3/multipart').length, 0, 'no new multipart upload after the reload')
    assert.ok(log.some((e) => e.kind === 'request' && e.method === 'GET' && /\/s3\/multipart\/[^/]+\?key=/.test(e.url)), 'the parts were listed')
    const puts = log.filter((e) => e.kind === 'request' && e.method === 'PUT').length
    assert.ok(puts <= 4, `${puts} parts sent after the reload, of 6`)
    await assertStored(server, page, [file])
  } finally {
    await context.close()
    await server.stop()
    await proxy.close()
  }
})
