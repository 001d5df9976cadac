// @tus/server with @tus/s3-store, as its README sets it up, with 8 MiB parts like chunkd:
//   node tus-node-s3-server.mjs <port> <s3-endpoint> <bucket> <access-key> <secret-key>
import { Server } from '@tus/server'
import { S3Store } from '@tus/s3-store'

const [port, endpoint, bucket, accessKeyId, secretAccessKey] = process.argv.slice(2)
const datastore = new S3Store({
  partSize: 8 * 1024 * 1024,
  s3ClientConfig: {
    bucket,
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
  },
})
const server = new Server({ path: '/files', datastore })
server.listen({ host: '127.0.0.1', port: Number(port) }, () => console.log(`listening ${port}`))
