// tus-js-client over TLS: a CA and a certificate for 127.0.0.1 made here with openssl,
// trusted by Node's https agent; a chunked upload paused and resumed, stored and served
// byte-identical.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import https from 'node:https'
import path from 'node:path'
import * as tus from 'tus-js-client'
import { startChunkd, tempDir, sha256, randomData, MiB, storedFile } from './support/chunkd.mjs'

let server
let ca

function openssl (dir, ...args) {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore', timeout: 60_000 })
}

before(async () => {
  const dir = tempDir()
  openssl(dir, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=chunkd test CA',
    '-keyout', 'ca.key', '-out', 'ca.pem')
  fs.writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n')
  openssl(dir, 'req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'leaf.key', '-out', 'leaf.csr')
  openssl(dir, 'x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-days', '2', '-extfile', 'san.ext', '-out', 'leaf.pem')
  ca = fs.readFileSync(path.join(dir, 'ca.pem'))
  // tus-js-client's Node transport uses the global agent.
  https.globalAgent.options.ca = ca
  server = await startChunkd({
    listen: 'tls://127.0.0.1:0',
    env: { CHUNKD_TLS__CERT_FILE: path.join(dir, 'leaf.pem'), CHUNKD_TLS__KEY_FILE: path.join(dir, 'leaf.key') }
  })
})
after(async () => { await server?.stop() })

function get (url) {
  return new Promise((resolve, reject) => {
    https.get(url, { ca }, res => {
      const chunks = []
      res.on('data', c => chunks.push(c))
      res.on('end', () => resolve(Buffer.concat(chunks)))
    }).on('error', reject)
  })
}

test('a chunked upload over TLS, paused and resumed, is stored byte-identical', async () => {
  assert.match(server.endpoint, /^https:\/\/127\.0\.0\.1:\d+\/files\/$/)
  const data = randomData(3 * MiB + 5)
  const options = { endpoint: server.endpoint, chunkSize: MiB, retryDelays: [0], metadata: { filename: 'tls.bin' } }
  // First run: stop once a chunk is in.
  const url = await new Promise((resolve, reject) => {
    const u = new tus.Upload(data, {
      ...options,
      onChunkComplete: () => { u.abort().then(() => resolve(u.url), reject) },
      onSuccess: () => reject(new Error('finished before the pause')),
      onError: reject
    })
    u.start()
  })
  // Second run: resume from the server's offset.
  await new Promise((resolve, reject) => {
    const u = new tus.Upload(data, { ...options, uploadUrl: url, onSuccess: resolve, onError: reject })
    u.start()
  })
  assert.equal(sha256(storedFile(server, url)), sha256(data))
  assert.equal(sha256(await get(url)), sha256(data))
})
