// @tus/server with @tus/file-store, as its README sets it up: node tus-node-server.mjs <port> <dir>
import { Server } from '@tus/server'
import { FileStore } from '@tus/file-store'

const port = Number(process.argv[2] || 1082)
const directory = process.argv[3] || './files'
const server = new Server({ path: '/files', datastore: new FileStore({ directory }) })
server.listen({ host: '127.0.0.1', port }, () => console.log(`listening ${port}`))
