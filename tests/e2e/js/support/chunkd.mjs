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

/** Starts chunkd; resolves once it prints its endpoint. */
export function startChunkd ({ dataDir = tempDir(), env = {}, args = [] } = {}) {
  const child = spawn(bin, ['--listen', '127.0.0.1:0', '--data-dir', dataDir, ...args, 'serve'], {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn', ...env },
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
    execFile(bin, args, { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
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

/** The finished file on disk, by upload id. */
export function storedFile (server, url) {
  const id = url.split('/').pop()
  return fs.readFileSync(path.join(server.dataDir, 'files', id))
}

export function partFile (server, url) {
  return path.join(server.dataDir, 'files', `${url.split('/').pop()}.part`)
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
