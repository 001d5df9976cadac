// chunkd's upload page: Uppy's Dashboard on the server's own endpoints. Uppy and
// tus-js-client do the uploading; this file only wires them to what the server says
// about itself, carries the caller's token, words refusals and lists finished files.
import { Uppy, Dashboard, Tus, AwsS3, GoldenRetriever } from './uppy.js'

const settings = JSON.parse(document.getElementById('chunkd-settings').textContent)
const notice = document.getElementById('notice')
const MiB = 1024 * 1024

// A token handed over in the fragment (`#token=...`) is kept for this tab only and
// taken out of the address bar, so it is not bookmarked or shared with the URL.
function takeToken () {
  const fragment = new URLSearchParams(location.hash.slice(1))
  const given = fragment.get('token')
  if (given) {
    sessionStorage.setItem('chunkd-token', given)
    fragment.delete('token')
    const rest = fragment.toString()
    history.replaceState(null, '', location.pathname + location.search + (rest ? `#${rest}` : ''))
  }
  return sessionStorage.getItem('chunkd-token')
}
const token = takeToken()
const authorization = token ? { Authorization: `Bearer ${token}` } : {}

// The token's `sub`, read without checking it (the server checks): only to keep lists apart.
function tokenUser () {
  try {
    const claims = token?.split('.')[1]
    return claims ? JSON.parse(atob(claims.replace(/-/g, '+').replace(/_/g, '/'))).sub : undefined
  } catch { return undefined }
}

function say (text, error = false) {
  notice.textContent = text
  notice.classList.toggle('error', error)
}

function bytes (n) {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let value = n / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++ }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`
}

// The HTTP status behind an error from tus-js-client or the S3 companion client.
function statusOf (error, response) {
  const fromResponse = response?.status || error?.originalResponse?.getStatus?.()
  if (fromResponse) return fromResponse
  const text = String(error?.message ?? '')
  const code = text.match(/response code: (\d{3})/)
  if (code) return Number(code[1])
  const reasons = { 'Payload Too Large': 413, 'Content Too Large': 413, Forbidden: 403, Unauthorized: 401, 'Insufficient Storage': 507 }
  for (const [reason, status] of Object.entries(reasons)) if (text.includes(reason)) return status
  return undefined
}

function explain (status) {
  const limit = settings.maxSize ? ` (at most ${bytes(settings.maxSize)})` : ''
  switch (status) {
    case 413: return `Too large: the server does not take a file this big${limit}.`
    case 403: return 'Not allowed: the server refused this upload.'
    case 401: return token ? 'Your sign-in was not accepted: open the page again from your application.' : 'Sign-in needed: open this page from your application.'
    case 507: return 'The server\'s storage is full. Your upload is kept: retry later.'
    case 410: case 404: return 'The server no longer has this upload: remove it and add the file again.'
    default: return undefined
  }
}

const uppy = new Uppy({
  id: 'chunkd',
  autoProceed: true,
  restrictions: { maxFileSize: settings.maxSize ?? null },
})

uppy.use(Dashboard, {
  target: '#dashboard',
  inline: true,
  width: '100%',
  height: 440,
  theme: 'auto',
  showProgressDetails: true,
  fileManagerSelectionType: 'both',
  proudlyDisplayPoweredByUppy: false,
  note: settings.maxSize ? `Files up to ${bytes(settings.maxSize)}. Uploads resume after a reload: add the same file again.` : 'Uploads resume after a reload: add the same file again.',
})

// Remembers the files and their uploads' places across reloads and browser restarts;
// a file too big to keep comes back as a ghost that continues once picked again.
uppy.use(GoldenRetriever, { serviceWorker: false })

// A restored session goes on by itself once every file is back (picked again, or
// kept by the browser), as a fresh pick would with autoProceed.
uppy.on('state-update', (_, next) => {
  const files = Object.values(next.files)
  if (next.recoveredState && files.length > 0 && !files.some((f) => f.isGhost)) {
    say('Continuing where the uploads stopped…')
    queueMicrotask(() => { if (uppy.getState().recoveredState) uppy.emit('restore-confirmed') })
  }
})

const retryDelays = [0, 1000, 3000, 5000, 10000, 20000, 30000]
if (settings.protocol === 's3') {
  // Uppy asks `{companionEndpoint}/s3/multipart...`: the server checked that its
  // browser-direct path ends in /s3.
  const base = new URL(settings.s3.replace(/\/s3\/?$/, '') || '/', location.href).href.replace(/\/$/, '')
  uppy.use(AwsS3, {
    companionEndpoint: base,
    shouldUseMultipart: true,
    limit: 4,
    getChunkSize: ({ size }) => Math.max(5 * MiB, Math.ceil(size / 10000)),
  })
} else {
  uppy.use(Tus, {
    endpoint: settings.protocol === 'ietf' ? settings.ietf : settings.tus,
    protocol: settings.protocol === 'ietf' ? 'ietf-draft-05' : 'tus-v1',
    chunkSize: settings.chunkSize > 0 ? settings.chunkSize : Infinity,
    retryDelays,
    headers: authorization,
    limit: 3,
    removeFingerprintOnSuccess: true,
  })
}

// The companion requests of the S3 mode go through `fetch`, which Uppy gives no
// headers option for: the token is added to this server's own requests only.
if (token && settings.protocol === 's3') {
  const fetch = window.fetch.bind(window)
  window.fetch = (resource, init = {}) => {
    const url = new URL(resource instanceof Request ? resource.url : resource, location.href)
    if (url.origin !== location.origin) return fetch(resource, init)
    const headers = new Headers(init.headers ?? (resource instanceof Request ? resource.headers : undefined))
    headers.set('Authorization', authorization.Authorization)
    return fetch(resource, { ...init, headers })
  }
}

uppy.on('upload-error', (file, error, response) => {
  const why = explain(statusOf(error, response))
  if (why && file) uppy.setFileState(file.id, { error: why })
  say(why ? `${file?.name ?? 'A file'}: ${why}` : `${file?.name ?? 'A file'} failed: ${error?.message ?? error}. Retry to continue where it stopped.`, true)
})
uppy.on('restriction-failed', (file, error) => say(error.message, true))
uppy.on('is-offline', () => say('The network is gone; uploads continue when it is back.', true))
uppy.on('back-online', () => say('Back online: continuing.'))
uppy.on('upload', () => say('Uploading…'))
uppy.on('complete', ({ successful, failed }) => {
  if (failed.length === 0 && successful.length > 0) say(`Done: ${successful.length} file(s) stored.`)
})

// Finished uploads: the caller's own as the server lists them (when it knows who is
// asking: a token, or a proxy's sign-in), and those this browser made, kept apart per
// token user so two people sharing a browser do not see each other's.
const HISTORY = `chunkd-finished${tokenUser() ? `:${tokenUser()}` : ''}`
const finished = document.getElementById('finished')
const empty = document.getElementById('finished-empty')
let listed = []

function remembered () {
  try { return JSON.parse(localStorage.getItem(HISTORY) ?? '[]') } catch { return [] }
}

async function fetchListed () {
  try {
    const answer = await window.fetch(new URL('finished', import.meta.url), { headers: authorization })
    if (!answer.ok) return
    const entries = await answer.json()
    listed = entries.map((e) => ({ name: e.name, size: e.size, url: e.url, at: new Date(e.created * 1000).toISOString() }))
    show()
  } catch { /* the browser's own list stands */ }
}

function downloadUrl (file, response) {
  const url = response?.uploadURL
  if (!url) return undefined
  if (settings.protocol !== 'ietf') return url
  // Finished uploads are downloaded from the tus path, whichever endpoint made them.
  const id = new URL(url, location.href).pathname.split('/').filter(Boolean).pop()
  return new URL(settings.tus.replace(/\/?$/, '/') + id, location.href).href
}

async function download (event, entry) {
  // A plain link carries no token: fetch with it (from this server only, never handing
  // the token elsewhere), then give the file to the browser.
  if (!token || new URL(entry.url, location.href).origin !== location.origin) return
  event.preventDefault()
  const answer = await window.fetch(entry.url, { headers: authorization })
  if (!answer.ok) { say(`${entry.name}: ${explain(answer.status) ?? `the server answered ${answer.status}`}`, true); return }
  const link = document.createElement('a')
  link.href = URL.createObjectURL(await answer.blob())
  link.download = entry.name
  link.click()
  setTimeout(() => URL.revokeObjectURL(link.href), 60000)
}

function show () {
  const seen = new Set()
  const entries = [...remembered(), ...listed]
    .map((entry) => ({ ...entry, url: new URL(entry.url, location.href).href }))
    .filter((entry) => !seen.has(entry.url) && seen.add(entry.url))
    .sort((a, b) => (a.at < b.at ? 1 : -1))
  empty.hidden = entries.length > 0
  finished.replaceChildren(...entries.map((entry) => {
    const item = document.createElement('li')
    const link = document.createElement('a')
    link.href = entry.url
    link.textContent = entry.name
    link.download = entry.name
    link.addEventListener('click', (event) => download(event, entry))
    const size = document.createElement('span')
    size.className = 'size'
    size.textContent = bytes(entry.size)
    const when = document.createElement('time')
    when.dateTime = entry.at
    when.textContent = new Date(entry.at).toLocaleString()
    item.append(link, size, when)
    return item
  }))
}

uppy.on('upload-success', (file, response) => {
  const url = downloadUrl(file, response)
  if (!url) return
  const entries = [{ name: file.name, size: file.size, url, at: new Date().toISOString() }, ...remembered()]
  localStorage.setItem(HISTORY, JSON.stringify(entries.slice(0, 200)))
  show()
})

show()
fetchListed()
say(token ? 'Signed in. Drop files or pick them to upload.' : 'Drop files or pick them to upload.')
