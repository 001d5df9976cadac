// tus-js-client (Node) uploads a file through a host application:
// node tus_upload.mjs <endpoint> <file> <chunk size> [Cookie header] [protocol]; prints the
// upload URL. The protocol is tus-js-client's: tus-v1 (the default), ietf-draft-05, ...
import fs from 'node:fs'
import * as tus from 'tus-js-client'

const [endpoint, file, chunkSize, cookie, protocol = 'tus-v1'] = process.argv.slice(2)
const data = fs.readFileSync(file)
const upload = new tus.Upload(data, {
  endpoint,
  protocol,
  chunkSize: Number(chunkSize),
  // No retries: an error of the server's must fail the test, not be papered over.
  retryDelays: null,
  headers: cookie ? (cookie.includes('=') ? { Cookie: cookie } : { 'X-App-User': cookie }) : {},
  metadata: { filename: 'data.bin' },
  onError: (e) => { console.error(String(e)); process.exit(1) },
  onSuccess: () => console.log(upload.url)
})
upload.start()
