// tus-js-client (Node) uploads a file through a host application:
// node tus_upload.mjs <endpoint> <file> <chunk size> [Cookie header]; prints the upload URL.
import fs from 'node:fs'
import * as tus from 'tus-js-client'

const [endpoint, file, chunkSize, cookie] = process.argv.slice(2)
const data = fs.readFileSync(file)
const upload = new tus.Upload(data, {
  endpoint,
  chunkSize: Number(chunkSize),
  retryDelays: [0, 100, 500],
  headers: cookie ? { Cookie: cookie } : {},
  metadata: { filename: 'data.bin' },
  onError: (e) => { console.error(String(e)); process.exit(1) },
  onSuccess: () => console.log(upload.url)
})
upload.start()
