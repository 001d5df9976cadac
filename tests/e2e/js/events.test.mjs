// The event stream of a user's own uploads, read by the `eventsource` package (the
// WHATWG EventSource in Node) while tus-js-client uploads, as a page would show them.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { EventSource } from 'eventsource'
import * as tus from 'tus-js-client'
import { startChunkd, sha256, randomData, MiB, storedFile, until } from './support/chunkd.mjs'

const KEY = 'events-test-token-key-0123456789abcdef'
let server
before(async () => {
  server = await startChunkd({
    env: {
      CHUNKD_AUTH__MODE: 'token',
      CHUNKD_AUTH__TOKEN_KEY: KEY,
      // A progress event per checkpoint: several per file.
      CHUNKD_CHECKPOINT_BYTES: String(256 * 1024)
    }
  })
})
after(async () => { await server?.stop() })

const b64url = s => Buffer.from(s).toString('base64url')
function token (sub) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))
  const claims = b64url(JSON.stringify({ sub, exp: Math.floor(Date.now() / 1000) + 600 }))
  const mac = createHmac('sha256', KEY).update(`${head}.${claims}`).digest('base64url')
  return `${head}.${claims}.${mac}`
}

function upload (data, user, filename) {
  return new Promise((resolve, reject) => {
    const u = new tus.Upload(data, {
      endpoint: server.endpoint,
      chunkSize: MiB,
      headers: { Authorization: `Bearer ${token(user)}` },
      metadata: { filename },
      onSuccess: () => resolve(u.url),
      onError: reject
    })
    u.start()
  })
}

/** Opens alice's stream; resolves with it once the server said it is live. */
function openStream (user, seen) {
  const source = new EventSource(`${server.origin}/events?access_token=${token(user)}`)
  for (const kind of ['created', 'progress', 'finished', 'failed', 'lagged']) {
    source.addEventListener(kind, e => seen.push({ kind, ...JSON.parse(e.data) }))
  }
  return new Promise((resolve, reject) => {
    source.addEventListener('ready', () => resolve(source))
    source.onerror = e => reject(new Error(`stream failed: ${e.message ?? e.code}`))
  })
}

test('a stream shows its user every upload under way, and the batch as one total', async () => {
  const seen = []
  const stream = await openStream('alice', seen)
  try {
    const files = { 'a.bin': randomData(3 * MiB + 5), 'b.bin': randomData(MiB + 7) }
    const bobs = randomData(2 * MiB)
    const [urlA, urlB] = await Promise.all([
      upload(files['a.bin'], 'alice', 'a.bin'),
      upload(files['b.bin'], 'alice', 'b.bin'),
      upload(bobs, 'bob', 'bob.bin')
    ])
    // Both finishes are saved before the uploads' last answers, so their events are
    // on the way; the stream is read until they are in.
    await until(() => seen.filter(e => e.kind === 'finished').length === 2, 15_000, 'both finishes')
    assert.ok(!seen.some(e => e.filename === 'bob.bin'), "bob's upload is not alice's to see")
    assert.ok(!seen.some(e => e.kind === 'failed' || e.kind === 'lagged'), JSON.stringify(seen))
    const total = files['a.bin'].length + files['b.bin'].length
    for (const [name, data] of Object.entries(files)) {
      const events = seen.filter(e => e.filename === name)
      assert.equal(events[0].kind, 'created')
      assert.equal(events.at(-1).kind, 'finished')
      assert.equal(events.at(-1).offset, data.length)
      const progress = events.filter(e => e.kind === 'progress').map(e => e.offset)
      assert.ok(progress.length >= 4, `${name}: ${progress}`)
      assert.deepEqual(progress, [...progress].sort((x, y) => x - y), `${name} only moves forward`)
      assert.equal(progress.at(-1), data.length)
    }
    const batch = seen.at(-1).batch
    assert.deepEqual(batch, { uploads: 2, ended: 2, offset: total, length: total })
    const totals = seen.map(e => e.batch.offset)
    assert.deepEqual(totals, [...totals].sort((x, y) => x - y), 'the batch total only grows')
    assert.equal(sha256(storedFile(server, urlA)), sha256(files['a.bin']))
    assert.equal(sha256(storedFile(server, urlB)), sha256(files['b.bin']))
  } finally {
    stream.close()
  }
})

test('a stream needs an identity, from the header or the query', async () => {
  const anonymous = await fetch(`${server.origin}/events`, { headers: { Accept: 'text/event-stream' } })
  assert.equal(anonymous.status, 401)
  await anonymous.body?.cancel()
  const forged = await fetch(`${server.origin}/events?access_token=${token('alice')}x`, {
    headers: { Accept: 'text/event-stream' }
  })
  assert.equal(forged.status, 403)
  await forged.body?.cancel()
  const named = await fetch(`${server.origin}/events`, {
    headers: { Accept: 'text/event-stream', Authorization: `Bearer ${token('carol')}` }
  })
  assert.equal(named.status, 200)
  assert.match(named.headers.get('content-type'), /^text\/event-stream/)
  await named.body.cancel()
})

test('with instances on PostgreSQL, a stream on one shows uploads sent to another', async () => {
  const need = name => {
    if (!process.env[name]) throw new Error(`${name} is not set: run scripts/test-all.sh`)
    return process.env[name]
  }
  const tag = Math.random().toString(16).slice(2, 10)
  const shared = {
    CHUNKD_AUTH__MODE: 'token',
    CHUNKD_AUTH__TOKEN_KEY: KEY,
    CHUNKD_CHECKPOINT_BYTES: String(256 * 1024),
    CHUNKD_STORE: 's3',
    CHUNKD_S3__ENDPOINT: need('CHUNKD_TEST_S3_ENDPOINT'),
    CHUNKD_S3__BUCKET: `ev${tag}`,
    CHUNKD_S3__ACCESS_KEY: need('CHUNKD_TEST_S3_ACCESS_KEY'),
    CHUNKD_S3__SECRET_KEY: need('CHUNKD_TEST_S3_SECRET_KEY'),
    CHUNKD_S3__CREATE_BUCKET: 'true',
    CHUNKD_STATE: 'postgres',
    CHUNKD_POSTGRES__URL: need('CHUNKD_TEST_PG_URL'),
    CHUNKD_POSTGRES__SCHEMA: `ev_${tag}`
  }
  const watched = await startChunkd({ env: shared })
  const receiving = await startChunkd({ env: shared })
  const seen = []
  const source = new EventSource(`${watched.origin}/events?access_token=${token('alice')}`)
  try {
    for (const kind of ['created', 'progress', 'finished', 'failed']) {
      source.addEventListener(kind, e => seen.push({ kind, ...JSON.parse(e.data) }))
    }
    await new Promise((resolve, reject) => {
      source.addEventListener('ready', resolve)
      source.onerror = e => reject(new Error(`stream failed: ${e.message ?? e.code}`))
    })
    const data = randomData(2 * MiB + 3)
    const url = await new Promise((resolve, reject) => {
      const u = new tus.Upload(data, {
        endpoint: receiving.endpoint,
        chunkSize: MiB,
        headers: { Authorization: `Bearer ${token('alice')}` },
        metadata: { filename: 'elsewhere.bin' },
        onSuccess: () => resolve(u.url),
        onError: reject
      })
      u.start()
    })
    await until(() => seen.some(e => e.kind === 'finished'), 15_000, 'the finish, relayed')
    const mine = seen.filter(e => e.filename === 'elsewhere.bin')
    assert.equal(mine[0].kind, 'created')
    assert.deepEqual(mine.at(-1), { ...mine.at(-1), kind: 'finished', offset: data.length })
    const progress = mine.filter(e => e.kind === 'progress').map(e => e.offset)
    assert.ok(progress.length >= 4, `${progress}`)
    assert.deepEqual(progress, [...progress].sort((x, y) => x - y))
    const res = await fetch(url, { headers: { Authorization: `Bearer ${token('alice')}` } })
    assert.equal(sha256(Buffer.from(await res.arrayBuffer())), sha256(data))
  } finally {
    source.close()
    await watched.stop()
    await receiving.stop()
  }
})
