#!/usr/bin/env bash
# Rebuilds the upload page's vendored client from npm: Uppy's Dashboard with its tus,
# S3 multipart and Golden Retriever plugins at the versions pinned in
# crates/chunkd-http/ui/package.json (and its lock file), bundled into one minified ES
# module and one stylesheet, gzipped, with the licences of every package inside.
# The Rust build only embeds the results (crates/chunkd-http/ui/vendor), so it never
# needs npm. To move to newer versions: edit package.json, run
# `npm install --package-lock-only` in that folder, then this script, then the tests.
set -euo pipefail
cd "$(dirname "$0")/../crates/chunkd-http/ui"
ui=$PWD
work=$(mktemp -d -t chunkd-ui.XXXXXX)
trap 'rm -rf "$work"' EXIT

cp package.json package-lock.json entry.js "$work"
(cd "$work" && npm ci --no-audit --no-fund --loglevel=error)
(cd "$work" && npx esbuild entry.js --bundle --minify --format=esm --target=es2020 \
  --legal-comments=none --metafile=meta.json --outfile=uppy.js --log-level=warning)
cat "$work/node_modules/@uppy/core/dist/style.min.css" \
  "$work/node_modules/@uppy/dashboard/dist/style.min.css" > "$work/uppy.css"

# The licence of each package the bundle took code from.
(cd "$work" && node --input-type=module -e '
import { readFileSync, readdirSync, existsSync } from "node:fs"
const meta = JSON.parse(readFileSync("meta.json", "utf8"))
const packages = new Set()
for (const input of Object.keys(meta.inputs)) {
  const m = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//g)
  if (m) packages.add(m[m.length - 1].slice("node_modules/".length, -1))
}
let out = "Third-party code in uppy.js and uppy.css, with each package'"'"'s licence.\n"
for (const name of [...packages].sort()) {
  const dir = `node_modules/${name}`
  const { version, license } = JSON.parse(readFileSync(`${dir}/package.json`, "utf8"))
  const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)/i.test(f))
  out += `\n==== ${name} ${version} (${license})\n\n`
  out += file && existsSync(`${dir}/${file}`) ? readFileSync(`${dir}/${file}`, "utf8").trim() + "\n"
    : `No licence file in the package; its package.json says ${license}.\n`
}
process.stdout.write(out)
' > "$ui/vendor/THIRD-PARTY-LICENSES.txt")

gzip -9n -c "$work/uppy.js" > "$ui/vendor/uppy.js.gz"
gzip -9n -c "$work/uppy.css" > "$ui/vendor/uppy.css.gz"
ls -l "$ui/vendor"
