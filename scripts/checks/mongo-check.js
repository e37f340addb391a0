// Checks a MongoDB-protocol server (FerretDB here) with the npm `mongodb`
// driver: a write, a sorted read, a unique compound index refusing a duplicate
// with code 11000, and findOneAndUpdate with $inc and upsert.
// Usage: node mongo-check.js mongodb://127.0.0.1:PORT/  (scripts/servers-check.sh installs the driver)
const assert = require('node:assert/strict')
const { MongoClient } = require('mongodb')

async function main(url) {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 5000 })
  await client.connect()
  try {
    const db = client.db(`check_${process.pid}_${Date.now()}`)
    const events = db.collection('events')
    await events.createIndex({ stream: 1, position: 1 }, { unique: true })
    await events.insertMany([
      { stream: 's', position: 2, payload: { n: 2 } },
      { stream: 's', position: 1, payload: { n: 1 } },
    ])
    const read = await events.find({ stream: 's' }).sort({ position: 1 }).limit(5).toArray()
    assert.deepEqual(read.map((e) => e.position), [1, 2])
    const duplicate = await events.insertOne({ stream: 's', position: 1 }).then(
      () => null,
      (err) => err,
    )
    assert.ok(duplicate, 'a duplicate (stream, position) was accepted')
    assert.equal(duplicate.code, 11000)
    const counters = db.collection('counters')
    await counters.findOneAndUpdate({ _id: 'c' }, { $inc: { n: 1 } }, { upsert: true })
    const after = await counters.findOneAndUpdate({ _id: 'c' }, { $inc: { n: 1 } }, { upsert: true, returnDocument: 'after' })
    assert.equal(after.n, 2)
    const build = await db.admin().command({ buildInfo: 1 })
    await db.dropDatabase()
    console.log(`mongo ok: ${url} (version ${build.version}; insertMany, sorted find, duplicate key code ${duplicate.code}, $inc upsert)`)
  } finally {
    await client.close()
  }
}

main(process.argv[2]).catch((err) => {
  console.error('mongo check failed:', err)
  process.exit(1)
})
