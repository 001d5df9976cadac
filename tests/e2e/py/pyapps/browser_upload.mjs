// Resumable.js or Flow.js, unmodified in jsdom, uploads a file through a host
// application: node browser_upload.mjs <resumable|flow> <origin> <target> <file> [cookie].
// Prints the server's last message (JSON).
import fs from 'node:fs'
import { browserWindow } from '../../js/support/browser.mjs'

const [lib, origin, target, file, cookie] = process.argv.slice(2)
const { window, Lib } = browserWindow(lib, origin)
// The page's session, as the browser would send it.
if (cookie) window.document.cookie = cookie
const r = new Lib({ target, chunkSize: 256 * 1024, forceChunkSize: false, simultaneousUploads: 3, testChunks: true })
r.on('fileSuccess', (f, message) => { console.log(message); process.exit(0) })
r.on('fileError', (f, message) => { console.error(`fileError: ${message}`); process.exit(1) })
r.on(lib === 'flow' ? 'filesSubmitted' : 'filesAdded', () => setTimeout(() => r.upload(), 0))
r.addFile(new window.File([fs.readFileSync(file)], 'photo.jpg', { type: 'image/jpeg' }))
