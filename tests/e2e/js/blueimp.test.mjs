// blueimp jQuery-File-Upload 10.32.0 (jQuery 3.7.1) in jsdom, chunked with Content-Range,
// wired as django-chunked-upload's demo page wires it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import { JSDOM } from 'jsdom'
import { startChunkd, sha256, randomData, storedFile } from './support/chunkd.mjs'

const require = createRequire(import.meta.url)
const scripts = ['jquery/dist/jquery.js', 'blueimp-file-upload/js/vendor/jquery.ui.widget.js', 'blueimp-file-upload/js/jquery.fileupload.js']
  .map(p => fs.readFileSync(require.resolve(p), 'utf8'))
const KiB = 1024
const md5 = buf => createHash('md5').update(buf).digest('hex')

function page (origin) {
  const window = new JSDOM('<!doctype html><body><input id="f" type="file" name="files[]"></body>', { runScripts: 'outside-only', url: origin + '/' }).window
  for (const s of scripts) window.eval(s)
  return window
}

/** Sends `data` in 256 KiB chunks; stops after `stopAfter` chunks if given. */
function send (window, server, data, { stopAfter, uploadedBytes, uploadId } = {}) {
  const $ = window.jQuery
  const formData = uploadId ? [{ name: 'upload_id', value: uploadId }] : []
  let chunks = 0
  return new Promise((resolve, reject) => {
    $('#f').fileupload({
      url: `${server.origin}/chunked/`,
      dataType: 'json',
      maxChunkSize: 256 * KiB,
      formData,
      // Returning false from chunksend aborts that chunk: the page "closes" here.
      chunksend: () => !(stopAfter && chunks >= stopAfter),
      chunkdone: (e, d) => {
        chunks++
        if (formData.length === 0) formData.push({ name: 'upload_id', value: d.result.upload_id })
        if (stopAfter && chunks === stopAfter) resolve({ stopped: true, uploadId: d.result.upload_id, chunks })
      }
    })
    const file = new window.File([data], 'movie.mp4', { type: 'video/mp4' })
    $('#f').fileupload('send', { files: [file], uploadedBytes }).done(result => resolve({ result, chunks })).fail((x, status, err) => {
      if (status !== 'abort') reject(new Error(`upload failed: ${status} ${err} ${x.responseText}`))
    })
  })
}

test('blueimp chunked upload, then completion with the md5', { timeout: 60_000 }, async () => {
  const server = await startChunkd()
  try {
    const data = randomData(1024 * KiB + 333)
    const { result, chunks } = await send(page(server.origin), server, data)
    assert.equal(chunks, 5)
    assert.equal(result.files[0].name, 'movie.mp4')
    assert.equal(result.files[0].size, data.length)
    const body = new URLSearchParams({ upload_id: result.upload_id, md5: md5(data) })
    const done = await fetch(`${server.origin}/chunked/complete`, { method: 'POST', body })
    assert.equal(done.status, 200)
    assert.equal(sha256(storedFile(server, result.url)), sha256(data))
  } finally {
    await server.stop()
  }
})

test('blueimp resumes with uploadedBytes from the state GET', { timeout: 60_000 }, async () => {
  const server = await startChunkd()
  try {
    const data = randomData(1024 * KiB)
    const first = await send(page(server.origin), server, data, { stopAfter: 2 })
    const state = await (await fetch(`${server.origin}/chunked/${first.uploadId}`)).json()
    assert.equal(state.offset, 512 * KiB)
    // A reloaded page: a new widget continues the same upload where the server stands.
    const second = await send(page(server.origin), server, data, { uploadedBytes: state.offset, uploadId: first.uploadId })
    assert.equal(second.chunks, 2, 'only the missing chunks were sent')
    assert.equal(second.result.upload_id, first.uploadId)
    assert.equal(sha256(storedFile(server, second.result.url)), sha256(data))
  } finally {
    await server.stop()
  }
})
