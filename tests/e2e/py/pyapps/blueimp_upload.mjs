// blueimp jQuery-File-Upload, unmodified in jsdom, sends a file in 256 KiB Content-Range
// chunks through a host application, then completes it with its md5 as
// django-chunked-upload's page does: node blueimp_upload.mjs <origin> <chunked url> <file> [cookie].
// Prints the completion's answer (JSON).
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import { JSDOM } from 'jsdom'

const require = createRequire(import.meta.url)
const [origin, target, file, cookie] = process.argv.slice(2)
const window = new JSDOM('<!doctype html><body><input id="f" type="file" name="files[]"></body>', { runScripts: 'outside-only', url: origin + '/' }).window
for (const p of ['jquery/dist/jquery.js', 'blueimp-file-upload/js/vendor/jquery.ui.widget.js', 'blueimp-file-upload/js/jquery.fileupload.js']) {
  window.eval(fs.readFileSync(require.resolve(p), 'utf8'))
}
if (cookie) window.document.cookie = cookie
const data = fs.readFileSync(file)
const $ = window.jQuery
const formData = []
$('#f').fileupload({
  url: target,
  dataType: 'json',
  maxChunkSize: 256 * 1024,
  formData,
  chunkdone: (e, d) => { if (formData.length === 0) formData.push({ name: 'upload_id', value: d.result.upload_id }) }
})
$('#f').fileupload('send', { files: [new window.File([data], 'movie.mp4', { type: 'video/mp4' })] })
  .done(async result => {
    const body = new URLSearchParams({ upload_id: result.upload_id, md5: createHash('md5').update(data).digest('hex') })
    const done = await fetch(`${target}/complete`, { method: 'POST', body, headers: cookie ? { Cookie: cookie } : {} })
    if (done.status !== 200) { console.error(`complete: ${done.status} ${await done.text()}`); process.exit(1) }
    console.log(JSON.stringify({ ...(await done.json()), chunked: result }))
    process.exit(0)
  })
  .fail((x, status, err) => { console.error(`upload failed: ${status} ${err} ${x.responseText}`); process.exit(1) })
