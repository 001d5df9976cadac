// tus-js-client in its IETF draft modes (ietf-draft-03 sends interop 5, ietf-draft-05
// interop 6) against the chunkd binary's /uploads endpoint.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import * as tus from 'tus-js-client'
import { startChunkd, sha256, randomData, MiB, storedFile } from './support/chunkd.mjs'

let server
let endpoint
before(async () => {
  server = await startChunkd()
  endpoint = `${server.origin}/uploads`
})
after(async () => { await server?.stop() })

const MODES = [['ietf-draft-03', '5'], ['ietf-draft-05', '6']]

function upload (source, options) {
  return new Promise((resolve, reject) => {
    const u = new tus.Upload(source, {
      endpoint,
      retryDelays: [0, 200, 500],
      metadata: { filename: 'draft.bin', filetype: 'application/octet-stream' },
      ...options,
      onSuccess: () => resolve(u.url),
      onError: reject
    })
    u.start()
  })
}

function startThenAbort (source, atLeast, options) {
  return new Promise((resolve, reject) => {
    let aborted = false
    const u = new tus.Upload(source, {
      endpoint,
      retryDelays: [0],
      ...options,
      onProgress: (sent) => {
        if (!aborted && sent >= atLeast && u.url) {
          aborted = true
          u.abort(false).then(() => resolve(u.url), reject)
        }
      },
      onSuccess: () => reject(new Error('finished before abort')),
      onError: reject
    })
    u.start()
  })
}

async function offsetOf (url, interop) {
  const res = await fetch(url, { method: 'HEAD', headers: { 'Upload-Draft-Interop-Version': interop } })
  assert.equal(res.status, 204)
  assert.equal(res.headers.get('upload-draft-interop-version'), interop)
  return { offset: Number(res.headers.get('upload-offset')), complete: res.headers.get('upload-complete') }
}

for (const [protocol, interop] of MODES) {
  test(`${protocol}: single request upload stores identical bytes`, async () => {
    const data = randomData(3 * MiB + 17)
    const url = await upload(data, { protocol })
    assert.ok(url.startsWith(`${endpoint}/`), url)
    assert.equal(sha256(storedFile(server, url)), sha256(data))
    assert.deepEqual(await offsetOf(url, interop), { offset: data.length, complete: '?1' })
  })

  test(`${protocol}: chunked upload stores identical bytes`, async () => {
    const data = randomData(4 * MiB + 5)
    const url = await upload(data, { protocol, chunkSize: MiB })
    assert.equal(sha256(storedFile(server, url)), sha256(data))
    // The tus side of the same engine serves the file.
    const res = await fetch(url.replace('/uploads/', '/files/'))
    assert.equal(res.status, 200)
    assert.equal(sha256(Buffer.from(await res.arrayBuffer())), sha256(data))
  })

  test(`${protocol}: an aborted upload resumes at the server's offset`, async () => {
    const data = randomData(5 * MiB)
    const url = await startThenAbort(data, 2 * MiB, { protocol, chunkSize: MiB })
    const { offset, complete } = await offsetOf(url, interop)
    assert.ok(offset >= MiB && offset < data.length, `offset ${offset}`)
    assert.equal(complete, '?0')
    const resumed = await upload(data, { protocol, chunkSize: MiB, uploadUrl: url })
    assert.equal(resumed, url)
    assert.equal(sha256(storedFile(server, url)), sha256(data))
  })

  test(`${protocol}: data sent with the creation request`, async () => {
    const data = randomData(MiB + 3)
    const url = await upload(data, { protocol, uploadDataDuringCreation: true, chunkSize: 400_000 })
    assert.equal(sha256(storedFile(server, url)), sha256(data))
  })
}
