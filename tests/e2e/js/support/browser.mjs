// Runs a browser upload library (Resumable.js, Flow.js) in a jsdom window whose origin is
// the server's, and counts the requests it sends.
import fs from 'node:fs'
import { createRequire } from 'node:module'
import { JSDOM } from 'jsdom'

const require = createRequire(import.meta.url)
const sources = {
  resumable: fs.readFileSync(require.resolve('resumablejs/resumable.js'), 'utf8'),
  flow: fs.readFileSync(require.resolve('@flowjs/flow.js/src/flow.js'), 'utf8')
}

export function browserWindow (lib, origin) {
  const window = new JSDOM('<!doctype html><body></body>', { runScripts: 'outside-only', url: origin + '/' }).window
  const sent = { GET: 0, POST: 0 }
  const open = window.XMLHttpRequest.prototype.open
  window.XMLHttpRequest.prototype.open = function (method, ...rest) {
    sent[method.toUpperCase()] = (sent[method.toUpperCase()] ?? 0) + 1
    return open.call(this, method, ...rest)
  }
  window.eval(sources[lib])
  return { window, sent, Lib: lib === 'flow' ? window.Flow : window.Resumable }
}
