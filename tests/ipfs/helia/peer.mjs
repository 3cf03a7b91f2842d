// A Helia 7 peer for hoard's IPFS interop tests, driven by tests/ipfs/peers.py.
//
// Network: libp2p listens on 127.0.0.1 only, with TCP + Noise + yamux, identify and bitswap.
// Nothing else is configured: no bootstrap list, no mDNS, no DHT, no autonat, no relay, no
// UPnP, no delegated HTTP routing and no trustless-gateway block broker (Helia's
// `createHelia` would add the last two; this script composes Helia from its light parts).
//
// Protocol: one JSON request per line on stdin, {"id": n, "op": "...", ...}; one JSON
// answer per line on stdout, {"id": n, "ok": true, "result": ...} or
// {"id": n, "ok": false, "error": "..."}. Logs go to stderr.
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'

import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { withBitswap } from '@helia/bitswap'
import { car } from '@helia/car'
import { withLibp2pLight } from '@helia/libp2p'
import { unixfs } from '@helia/unixfs'
import { CarReader } from '@ipld/car'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { MemoryBlockstore } from 'blockstore-core'
import { MemoryDatastore } from 'datastore-core'
import { createHeliaLight } from 'helia'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { CID } from 'multiformats/cid'

const LISTEN = ['/ip4/127.0.0.1/tcp/0']
const libp2pOptions = {
  addresses: { listen: LISTEN, announce: [], appendAnnounce: [] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  peerDiscovery: [],
  services: { identify: identify() }
}

const helia = withBitswap(withLibp2pLight(createHeliaLight({
  blockstore: new MemoryBlockstore(),
  datastore: new MemoryDatastore(),
  routers: [],
  blockBrokers: []
}), libp2pOptions))
await helia.start()
const fs = unixfs(helia)

function importerOptions (req) {
  const opts = {
    cidVersion: req.cidVersion ?? 1,
    rawLeaves: req.rawLeaves ?? true,
    reduceSingleLeafToSelf: true
  }
  if (req.chunkSize != null) opts.chunker = fixedSize({ chunkSize: req.chunkSize })
  if (req.maxChildren != null) opts.layout = balanced({ maxChildrenPerNode: req.maxChildren })
  if (req.shardSplitThresholdBytes != null) opts.shardSplitThresholdBytes = req.shardSplitThresholdBytes
  return opts
}

function signalOf (req) {
  return AbortSignal.timeout(req.timeoutMs ?? 30000)
}

async function * walk (root, rel) {
  // directory entries in name order, children after their directory (the importer sorts
  // directory links itself; order here only has to be stable)
  const names = (await readdir(join(root, rel))).sort()
  for (const name of names) {
    const path = rel === '' ? name : `${rel}/${name}`
    const info = await stat(join(root, path))
    if (info.isDirectory()) {
      yield { path: `root/${path}` }
      yield * walk(root, path)
    } else {
      yield { path: `root/${path}`, content: createReadStream(join(root, path)) }
    }
  }
}

async function exportTree (cid, dest, signal) {
  const entries = []
  for await (const entry of fs.ls(cid, { signal })) entries.push(entry)
  await mkdir(dest, { recursive: true })
  for (const entry of entries) {
    const target = join(dest, entry.name)
    const info = await fs.stat(entry.cid, { signal })
    if (info.type === 'directory') {
      await exportTree(entry.cid, target, signal)
    } else {
      await pipeline(Readable.from(fs.cat(entry.cid, { signal })), createWriteStream(target))
    }
  }
}

const ops = {
  async info () {
    return {
      peerId: helia.libp2p.peerId.toString(),
      addrs: helia.libp2p.getMultiaddrs().map(String),
      protocols: helia.libp2p.getProtocols()
    }
  },
  async config () {
    // what this peer runs, for tests that check it stays on 127.0.0.1
    return {
      listen: LISTEN,
      transports: helia.libp2p.getMultiaddrs().map(String),
      services: Object.keys(helia.libp2p.services),
      routers: helia.routing.routers?.map((r) => r.name ?? r.toString()) ?? [],
      blockBrokers: helia.blockBrokers.map((b) => b.name)
    }
  },
  async addFile (req) {
    const content = await readFile(req.path)
    const cid = await fs.addBytes(content, importerOptions(req))
    return cid.toString()
  },
  async addDir (req) {
    let last = null
    for await (const entry of fs.addAll(walk(req.path, ''), { ...importerOptions(req), wrapWithDirectory: false })) {
      if (entry.path === 'root') last = entry.cid
    }
    if (last == null) throw new Error('directory import yielded no root')
    return last.toString()
  },
  async cat (req) {
    await pipeline(Readable.from(fs.cat(CID.parse(req.cid), { signal: signalOf(req) })), createWriteStream(req.dest))
    return null
  },
  async getTree (req) {
    await exportTree(CID.parse(req.cid), req.dest, signalOf(req))
    return null
  },
  async getBlock (req) {
    const bytes = await helia.blockstore.get(CID.parse(req.cid), { signal: signalOf(req) })
    const chunks = []
    for await (const chunk of (bytes[Symbol.asyncIterator] ? bytes : [bytes])) chunks.push(chunk)
    return Buffer.concat(chunks).toString('base64')
  },
  async hasBlock (req) {
    return await helia.blockstore.has(CID.parse(req.cid))
  },
  async connect (req) {
    const conn = await helia.libp2p.dial(multiaddr(req.addr), { signal: signalOf(req) })
    return conn.remotePeer.toString()
  },
  async peers () {
    return helia.libp2p.getConnections().map((c) => c.remoteAddr.toString())
  },
  async exportCar (req) {
    const out = createWriteStream(req.path)
    await pipeline(Readable.from(car(helia).export(CID.parse(req.cid), { signal: signalOf(req), offline: true })), out)
    return null
  },
  async importCar (req) {
    const reader = await CarReader.fromBytes(await readFile(req.path))
    await car(helia).import(reader)
    return (await reader.getRoots()).map(String)
  },
  async stop () {
    await helia.stop()
    setImmediate(() => process.exit(0))
    return null
  }
}

const rl = createInterface({ input: process.stdin })
rl.on('line', (line) => {
  let req
  try {
    req = JSON.parse(line)
  } catch (err) {
    process.stdout.write(JSON.stringify({ id: null, ok: false, error: `bad request: ${err}` }) + '\n')
    return
  }
  const op = ops[req.op]
  if (op == null) {
    process.stdout.write(JSON.stringify({ id: req.id, ok: false, error: `unknown op ${req.op}` }) + '\n')
    return
  }
  op(req).then(
    (result) => process.stdout.write(JSON.stringify({ id: req.id, ok: true, result }) + '\n'),
    (err) => process.stdout.write(JSON.stringify({ id: req.id, ok: false, error: String(err?.stack ?? err) }) + '\n')
  )
})
rl.on('close', () => { helia.stop().finally(() => process.exit(0)) })
process.stdout.write(JSON.stringify({ id: 0, ok: true, result: 'ready' }) + '\n')
