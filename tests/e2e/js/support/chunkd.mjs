// Starts the built chunkd binary on a free loopback port with its own data directory.
import { spawn, execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..')
export const bin = process.env.CHUNKD_BIN ?? path.join(root, 'target/release/chunkd')

export function tempDir () {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'chunkd-e2e-'))
}

/**
 * With CHUNKD_E2E_BACKEND=s3+postgres, every server keeps its bytes in a bucket of its
 * own on the test S3 service and its records in a schema of its own on the test
 * PostgreSQL (both started by scripts/test-all.sh, named by CHUNKD_TEST_*).
 */
const backend = process.env.CHUNKD_E2E_BACKEND ?? 'fs'

function need (name) {
  const v = process.env[name]
  if (!v) throw new Error(`${name} is not set: run scripts/test-all.sh`)
  return v
}

function backendEnv () {
  if (backend === 'fs') return {}
  if (backend !== 's3+postgres') throw new Error(`unknown CHUNKD_E2E_BACKEND ${backend}`)
  const tag = randomBytes(6).toString('hex')
  return {
    CHUNKD_STORE: 's3',
    CHUNKD_S3__ENDPOINT: need('CHUNKD_TEST_S3_ENDPOINT'),
    CHUNKD_S3__BUCKET: `js${tag}`,
    CHUNKD_S3__ACCESS_KEY: need('CHUNKD_TEST_S3_ACCESS_KEY'),
    CHUNKD_S3__SECRET_KEY: need('CHUNKD_TEST_S3_SECRET_KEY'),
    CHUNKD_S3__CREATE_BUCKET: 'true',
    CHUNKD_STATE: 'postgres',
    CHUNKD_POSTGRES__URL: need('CHUNKD_TEST_PG_URL'),
    CHUNKD_POSTGRES__SCHEMA: `js_${tag}`
  }
}

/** The environment chunkd runs with: the test harness's variables are not its settings. */
function chunkdEnv (extra) {
  const harness = k => k.startsWith('CHUNKD_TEST_') || k.startsWith('CHUNKD_E2E_')
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !harness(k)))
  return { ...base, RUST_LOG: process.env.RUST_LOG ?? 'warn', ...extra }
}

/** Starts chunkd; resolves once it prints its endpoint. */
export function startChunkd ({ dataDir = tempDir(), env = {}, args = [], listen = '127.0.0.1:0' } = {}) {
  env = { ...backendEnv(), ...env }
  const child = spawn(bin, ['--listen', listen, '--data-dir', dataDir, ...args, 'serve'], {
    env: chunkdEnv(env),
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const exited = new Promise(resolve => child.on('exit', (code, signal) => resolve({ code, signal })))
  return new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error('chunkd did not start within 20 s')), 20_000)
    child.on('error', reject)
    exited.then(r => reject(new Error(`chunkd exited early: ${JSON.stringify(r)}`)))
    child.stdout.on('data', d => {
      out += d
      const m = out.match(/chunkd: tus uploads at (\S+)/)
      if (m) {
        clearTimeout(timer)
        const endpoint = m[1]
        resolve({
          endpoint,
          origin: new URL(endpoint).origin,
          dataDir,
          /** The settings this server runs with, for `chunkd gc` beside it. */
          env,
          bucket: env.CHUNKD_S3__BUCKET,
          child,
          exited,
          /** SIGTERM and wait for a clean exit. */
          async stop () {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
            return exited
          },
          /** kill -9: no chance to clean up. */
          async crash () {
            child.kill('SIGKILL')
            return exited
          }
        })
      }
    })
  })
}

/** Runs `chunkd <args>` to completion. */
export function runChunkd (args, env = {}) {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { env: chunkdEnv(env) }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`))
      else resolve(stdout)
    })
  })
}

export const sha256 = buf => createHash('sha256').update(buf).digest('hex')
export const randomData = n => randomBytes(n)
export const MiB = 1 << 20

/** The bytes chunkd serves for a finished upload. */
export async function download (url) {
  const res = await fetch(url)
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status}`)
  return Buffer.from(await res.arrayBuffer())
}

/** The finished file as stored, by upload id: on disk, or the object s3s-fs keeps. */
export function storedFile (server, url) {
  const id = url.split('/').pop()
  if (server.bucket) return fs.readFileSync(path.join(need('CHUNKD_TEST_S3_DIR'), server.bucket, id))
  return fs.readFileSync(path.join(server.dataDir, 'files', id))
}

/** Where an unfinished upload's bytes are: the `.part` file, or the S3 tail object. */
export function partFile (server, url) {
  const id = url.split('/').pop()
  if (server.bucket) return tailObject(path.join(need('CHUNKD_TEST_S3_DIR'), server.bucket), id)
  return path.join(server.dataDir, 'files', `${id}.part`)
}

/**
 * The S3 store names each tail `<id>.tail.<random>`; the newest one is the upload's
 * (a stale one lives only until the next write). A path that does not exist when none is.
 */
function tailObject (bucketDir, id) {
  const prefix = `${id}.tail`
  const tails = fs.readdirSync(bucketDir)
    .filter((name) => name.startsWith(prefix))
    .map((name) => path.join(bucketDir, name))
    .map((file) => ({ file, stat: fs.statSync(file, { throwIfNoEntry: false }) }))
    .filter((tail) => tail.stat)
    .sort((a, b) => b.stat.mtimeMs - a.stat.mtimeMs)
  return tails[0]?.file ?? path.join(bucketDir, prefix)
}

/** Polls `check` every 20 ms until it returns truthy, for at most `ms`. */
export async function until (check, ms = 15_000, what = 'condition') {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await check()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

export function fileSize (p) {
  try { return fs.statSync(p).size } catch { return -1 }
}
