// What survives a dropped connection, a kill -9, a SIGTERM and a competing request.
// The server checkpoints every 1 MiB here, so "the file reached N MiB" (watched on disk)
// means the first N MiB were consumed; the tests synchronise on that, never on time.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { startChunkd, sha256, randomData, MiB, download, partFile, until, fileSize } from './support/chunkd.mjs'

const env = { CHUNKD_CHECKPOINT_BYTES: String(MiB) }
const TUS = { 'Tus-Resumable': '1.0.0' }

async function create (server, length) {
  const res = await fetch(server.endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(length) } })
  assert.equal(res.status, 201)
  return res.headers.get('location')
}

async function patch (url, offset, body) {
  return fetch(url, {
    method: 'PATCH',
    headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset) },
    body
  })
}

async function offsetOf (url) {
  const res = await fetch(url, { method: 'HEAD', headers: TUS })
  assert.equal(res.status, 200)
  return Number(res.headers.get('upload-offset'))
}

/** A PATCH whose body is sent by hand: declares `declared` bytes, sends what we write. */
function openPatch (url, offset, declared) {
  const req = http.request(url, {
    method: 'PATCH',
    headers: {
      ...TUS,
      'Content-Type': 'application/offset+octet-stream',
      'Upload-Offset': String(offset),
      'Content-Length': String(declared)
    }
  })
  const response = new Promise(resolve => {
    req.on('response', res => {
      res.resume()
      res.on('end', () => resolve(res))
    })
    req.on('error', err => resolve({ error: err }))
  })
  return { req, response }
}

/** The same upload URL on a restarted server (new port). */
const onServer = (server, url) => server.origin + new URL(url).pathname

test('a dropped connection keeps every byte that arrived', async () => {
  const server = await startChunkd({ env })
  try {
    const data = randomData(6 * MiB)
    const url = await create(server, data.length)
    const { req } = openPatch(url, 0, data.length)
    req.write(data.subarray(0, 3 * MiB))
    await until(() => fileSize(partFile(server, url)) >= 3 * MiB, 15_000, 'bytes on disk')
    req.destroy()
    assert.equal(await offsetOf(url), 3 * MiB)
    assert.equal((await patch(url, 3 * MiB, data.subarray(3 * MiB))).status, 204)
    assert.equal(sha256(await download(url)), sha256(data))
  } finally {
    await server.stop()
  }
})

test('after kill -9 mid-PATCH the offset is servable and the resumed upload is identical', async () => {
  const server = await startChunkd({ env })
  const data = randomData(8 * MiB)
  const url = await create(server, data.length)
  assert.equal((await patch(url, 0, data.subarray(0, 2 * MiB))).status, 204)
  const { req } = openPatch(url, 2 * MiB, 6 * MiB)
  req.write(data.subarray(2 * MiB, 5 * MiB))
  await until(() => fileSize(partFile(server, url)) >= 5 * MiB, 15_000, 'bytes on disk')
  const killed = await server.crash()
  assert.equal(killed.signal, 'SIGKILL')
  req.destroy()

  const restarted = await startChunkd({ env, dataDir: server.dataDir })
  try {
    const again = onServer(restarted, url)
    const offset = await offsetOf(again)
    // Checkpoints up to 4 MiB had to be committed before the 5th MiB was written.
    assert.ok(offset >= 4 * MiB && offset <= 5 * MiB, `offset ${offset}`)
    assert.equal((await patch(again, offset, data.subarray(offset))).status, 204)
    assert.equal(sha256(await download(again)), sha256(data))
  } finally {
    await restarted.stop()
  }
})

test('SIGTERM lets an in-flight PATCH persist and report its offset', async () => {
  const server = await startChunkd({ env })
  const data = randomData(8 * MiB)
  const url = await create(server, data.length)
  const { req, response } = openPatch(url, 0, data.length)
  req.write(data.subarray(0, 3 * MiB))
  await until(() => fileSize(partFile(server, url)) >= 3 * MiB, 15_000, 'bytes on disk')
  server.child.kill('SIGTERM')
  const res = await response
  assert.equal(res.statusCode, 503)
  assert.equal(Number(res.headers['upload-offset']), 3 * MiB)
  const exit = await server.exited
  assert.equal(exit.code, 0)

  const restarted = await startChunkd({ env, dataDir: server.dataDir })
  try {
    const again = onServer(restarted, url)
    assert.equal(await offsetOf(again), 3 * MiB)
    assert.equal((await patch(again, 3 * MiB, data.subarray(3 * MiB))).status, 204)
    assert.equal(sha256(await download(again)), sha256(data))
  } finally {
    await restarted.stop()
  }
})

test('a newer request makes a stalled PATCH let go and keep its bytes', async () => {
  const server = await startChunkd({ env })
  try {
    const data = randomData(4 * MiB)
    const url = await create(server, data.length)
    const { req, response } = openPatch(url, 0, data.length)
    req.write(data.subarray(0, MiB))
    await until(() => fileSize(partFile(server, url)) >= MiB, 15_000, 'bytes on disk')
    // The stalled PATCH still holds the upload; the HEAD must not wait for it to time out.
    assert.equal(await offsetOf(url), MiB)
    const old = await response
    assert.equal(old.statusCode, 400)
    req.destroy()
    assert.equal((await patch(url, MiB, data.subarray(MiB))).status, 204)
    assert.equal(sha256(await download(url)), sha256(data))
  } finally {
    await server.stop()
  }
})
