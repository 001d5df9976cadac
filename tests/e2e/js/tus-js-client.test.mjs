// tus-js-client (the client behind Uppy's tus plugin) against the chunkd binary.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import * as tus from 'tus-js-client'
import { startChunkd, runChunkd, sha256, randomData, MiB, download, storedFile, partFile, until } from './support/chunkd.mjs'

let server
before(async () => { server = await startChunkd() })
after(async () => { await server?.stop() })

/** Runs an upload to completion; resolves with its URL. */
function upload (source, options) {
  return new Promise((resolve, reject) => {
    const u = new tus.Upload(source, {
      endpoint: server.endpoint,
      retryDelays: [0, 200, 500],
      metadata: { filename: 'data.bin', filetype: 'application/octet-stream' },
      ...options,
      onSuccess: () => resolve(u.url),
      onError: reject
    })
    u.start()
  })
}

/** Starts an upload and aborts it once `atLeast` bytes were sent; resolves with its URL. */
function startThenAbort (source, atLeast, options = {}, terminate = false) {
  return new Promise((resolve, reject) => {
    let aborted = false
    const u = new tus.Upload(source, {
      endpoint: server.endpoint,
      retryDelays: [0],
      ...options,
      onProgress: (sent) => {
        if (!aborted && sent >= atLeast && u.url) {
          aborted = true
          u.abort(terminate).then(() => resolve(u.url), reject)
        }
      },
      onSuccess: () => reject(new Error('finished before abort')),
      onError: reject
    })
    u.start()
  })
}

async function head (url) {
  return fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })
}

test('single request upload stores identical bytes', async () => {
  const data = randomData(5 * MiB + 123)
  const url = await upload(data, {})
  assert.equal(sha256(await download(url)), sha256(data))
  assert.equal(sha256(storedFile(server, url)), sha256(data))
})

test('chunked upload stores identical bytes', async () => {
  const data = randomData(4 * MiB + 7)
  const url = await upload(data, { chunkSize: MiB })
  assert.equal(sha256(storedFile(server, url)), sha256(data))
  const res = await fetch(url)
  assert.match(res.headers.get('content-disposition'), /filename="data.bin"/)
})

test('creation with upload sends data in the POST', async () => {
  const data = randomData(MiB + 1)
  const url = await upload(data, { uploadDataDuringCreation: true, chunkSize: 600_000 })
  assert.equal(sha256(storedFile(server, url)), sha256(data))
})

test('interrupted upload resumes from the server offset', async () => {
  const data = randomData(6 * MiB)
  const url = await startThenAbort(data, 3 * MiB, { chunkSize: MiB })
  const offset = Number((await head(url)).headers.get('upload-offset'))
  assert.ok(offset >= 2 * MiB && offset < data.length, `offset ${offset}`)
  const resumedUrl = await upload(data, { uploadUrl: url, chunkSize: MiB })
  assert.equal(resumedUrl, url, 'the same upload was resumed, not recreated')
  assert.equal(sha256(storedFile(server, url)), sha256(data))
})

test('parallel upload is concatenated in order', async () => {
  const data = randomData(8 * MiB + 3)
  const url = await upload(data, { parallelUploads: 4 })
  const res = await head(url)
  assert.match(res.headers.get('upload-concat'), /^final;/)
  assert.equal(Number(res.headers.get('upload-offset')), data.length)
  assert.equal(sha256(await download(url)), sha256(data))
})

test('parallel upload with parts of 5 MiB and more is joined by the store itself', async () => {
  // On S3 each partial is copied into the final object (UploadPartCopy); on disk the
  // partial files are copied kernel-side. Either way the bytes match.
  const data = randomData(12 * MiB + 5)
  const url = await upload(data, { parallelUploads: 2 })
  assert.equal(Number((await head(url)).headers.get('upload-offset')), data.length)
  assert.equal(sha256(storedFile(server, url)), sha256(data))
  assert.equal(sha256(await download(url)), sha256(data))
})

test('deferred length upload declares its length on the last PATCH', async () => {
  // A Buffer source: tus-js-client 4.3.1's Node *stream* source sends its last deferred
  // chunk with a Content-Length of a whole chunk but only the remaining bytes, and never
  // finishes the request (seen on the wire against a plain socket stub too).
  const data = randomData(3 * MiB + 5)
  const url = await upload(data, { uploadLengthDeferred: true, chunkSize: MiB })
  assert.equal(sha256(storedFile(server, url)), sha256(data))
})

test('termination deletes the upload', async () => {
  const data = randomData(4 * MiB)
  const url = await startThenAbort(data, MiB, { chunkSize: MiB }, true)
  assert.equal((await head(url)).status, 404)
  assert.equal(fs.existsSync(partFile(server, url)), false)
})

test('expired uploads are gone, collected by chunkd gc, and clients start over', async () => {
  const short = await startChunkd({ env: { CHUNKD_EXPIRE_AFTER: '1s', CHUNKD_GC_INTERVAL: '1h' } })
  try {
    const data = randomData(3 * MiB)
    const first = await new Promise((resolve, reject) => {
      let done = false
      const u = new tus.Upload(data, {
        endpoint: short.endpoint,
        chunkSize: MiB,
        retryDelays: [0],
        onChunkComplete: () => { if (!done) { done = true; u.abort().then(() => resolve(u.url), reject) } },
        onError: reject
      })
      u.start()
    })
    assert.equal(fs.existsSync(partFile(short, first)), true)
    // Expired but not yet collected: 410 Gone, as the expiration extension allows.
    await until(async () => (await head(first)).status === 410, 15_000, 'expiry')
    // gc runs as a second process beside the server, on the same state database.
    const out = await runChunkd(['--data-dir', short.dataDir, 'gc'], short.env)
    assert.match(out, /purged 1 expired upload/)
    assert.equal(fs.existsSync(partFile(short, first)), false)
    assert.equal((await head(first)).status, 404)
    const again = await new Promise((resolve, reject) => {
      const u = new tus.Upload(data, {
        endpoint: short.endpoint, uploadUrl: first, chunkSize: MiB, retryDelays: [0],
        onSuccess: () => resolve(u.url), onError: reject
      })
      u.start()
    })
    assert.notEqual(again, first)
    assert.equal(sha256(storedFile(short, again)), sha256(data))
  } finally {
    await short.stop()
  }
})

test('the server collects expired uploads in the background', async () => {
  const short = await startChunkd({ env: { CHUNKD_EXPIRE_AFTER: '1s', CHUNKD_GC_INTERVAL: '200ms' } })
  try {
    const res = await fetch(short.endpoint, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '100' } })
    const url = res.headers.get('location')
    const patched = await fetch(url, {
      method: 'PATCH',
      headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
      body: randomData(50)
    })
    assert.equal(patched.status, 204)
    assert.equal(fs.existsSync(partFile(short, url)), true)
    await until(() => !fs.existsSync(partFile(short, url)), 15_000, 'background collection')
    assert.equal((await head(url)).status, 404)
  } finally {
    await short.stop()
  }
})
