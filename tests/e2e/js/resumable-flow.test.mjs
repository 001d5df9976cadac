// Resumable.js 1.1.0 and Flow.js 2.14.1, unmodified, in jsdom, against the chunkd binary.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { startChunkd, sha256, randomData, download } from './support/chunkd.mjs'
import { browserWindow } from './support/browser.mjs'

const KiB = 1024

/** The finished files in the data directory (chunks are cleaned up after assembly). */
function finishedFiles (server) {
  const dir = path.join(server.dataDir, 'files')
  return fs.readdirSync(dir).filter(f => !f.endsWith('.part')).map(f => ({ id: f, data: fs.readFileSync(path.join(dir, f)) }))
}

/** Uploads `data` with a fresh library instance; resolves with the server's last message. */
function uploadWith (lib, server, data, { pauseAt, ...options } = {}) {
  const target = `${server.origin}/${lib === 'flow' ? 'flow' : 'resumable'}`
  const { window, sent, Lib } = browserWindow(lib, server.origin)
  const r = new Lib({ target, chunkSize: 256 * KiB, forceChunkSize: false, simultaneousUploads: 3, testChunks: true, ...options })
  const done = new Promise((resolve, reject) => {
    r.on('fileSuccess', (file, message) => resolve({ message, sent }))
    r.on('fileError', (file, message) => reject(new Error(`fileError: ${message}`)))
    if (pauseAt !== undefined) {
      r.on('fileProgress', file => {
        if (file.progress() >= pauseAt) {
          r.pause()
          resolve({ paused: true, sent })
        }
      })
    }
  })
  // Upload once the library has prepared the file (Resumable.js does it asynchronously).
  r.on(lib === 'flow' ? 'filesSubmitted' : 'filesAdded', () => setTimeout(() => r.upload(), 0))
  r.addFile(new window.File([data], 'photo.jpg', { type: 'image/jpeg' }))
  return done
}

for (const lib of ['resumable', 'flow']) {
  test(`${lib}: chunks in parallel and out of order assemble into the file`, { timeout: 60_000 }, async () => {
    const server = await startChunkd()
    try {
      // Not a multiple of the chunk size: the last chunk is larger than the others.
      const data = randomData(2 * 1024 * KiB + 77 * KiB + 13)
      const { message } = await uploadWith(lib, server, data, { prioritizeFirstAndLastChunk: true })
      const files = finishedFiles(server)
      assert.equal(files.length, 1, 'one assembled file, chunks cleaned up')
      assert.equal(sha256(files[0].data), sha256(data))
      const reply = JSON.parse(message)
      assert.equal(reply.complete, true)
      assert.equal(reply.id, files[0].id)
      assert.equal(reply.filename, 'photo.jpg')
      // The assembled file is an ordinary upload: tus serves it, named.
      assert.equal(sha256(await download(`${server.endpoint}${reply.id}`)), sha256(data))
      const res = await fetch(`${server.endpoint}${reply.id}`)
      assert.match(res.headers.get('content-disposition'), /filename="photo.jpg"/)
    } finally {
      await server.stop()
    }
  })

  test(`${lib}: a reloaded page resumes, skipping chunks the server has`, { timeout: 60_000 }, async () => {
    const server = await startChunkd()
    try {
      const data = randomData(4 * 256 * KiB * 3)
      const first = await uploadWith(lib, server, data, { pauseAt: 0.4, simultaneousUploads: 1 })
      assert.equal(first.paused, true)
      // A new page, a new library instance, the same file: test GETs find what is stored.
      const second = await uploadWith(lib, server, data, { simultaneousUploads: 3 })
      const chunks = 12
      assert.ok(second.sent.POST < chunks, `resumed upload sent ${second.sent.POST} of ${chunks} chunks`)
      const files = finishedFiles(server)
      assert.equal(files.length, 1)
      assert.equal(sha256(files[0].data), sha256(data))
    } finally {
      await server.stop()
    }
  })
}

test('resumable: octet-stream chunks (method: octet) work too', { timeout: 60_000 }, async () => {
  const server = await startChunkd()
  try {
    const data = randomData(700 * KiB)
    await uploadWith('resumable', server, data, { method: 'octet', forceChunkSize: true })
    const files = finishedFiles(server)
    assert.equal(files.length, 1)
    assert.equal(sha256(files[0].data), sha256(data))
  } finally {
    await server.stop()
  }
})

test('resumable: identifiers are scoped per user', { timeout: 60_000 }, async () => {
  const server = await startChunkd({ env: { CHUNKD_AUTH__MODE: 'header', CHUNKD_AUTH__HEADER: 'X-Forwarded-User', CHUNKD_AUTH__REQUIRED: 'true' } })
  try {
    const alices = randomData(600 * KiB)
    const bobs = randomData(600 * KiB)
    // Same name and size, so the same Resumable.js identifier for both files.
    await uploadWith('resumable', server, alices, { headers: { 'X-Forwarded-User': 'alice' } })
    const sent = await uploadWith('resumable', server, bobs, { headers: { 'X-Forwarded-User': 'bob' } })
    assert.equal(sent.sent.POST, 2, "alice's chunks are invisible to bob's test GETs")
    const hashes = finishedFiles(server).map(f => sha256(f.data)).sort()
    assert.deepEqual(hashes, [sha256(alices), sha256(bobs)].sort())
    const anonymous = await fetch(`${server.origin}/resumable?resumableChunkNumber=1`)
    assert.equal(anonymous.status, 403)
  } finally {
    await server.stop()
  }
})
