// Checks a Neo4j server with the npm `neo4j-driver`: one write and one read
// (in separate transactions), and the server's version.
// Usage: node neo4j-check.js bolt://127.0.0.1:PORT  (scripts/servers-check.sh installs the driver)
const assert = require('node:assert/strict')
const neo4j = require('neo4j-driver')

async function main(url) {
  // Authentication is off on the test servers; the driver sends these anyway.
  const driver = neo4j.driver(url, neo4j.auth.basic('neo4j', 'unused-password'))
  const session = driver.session()
  try {
    const info = await driver.getServerInfo()
    const stream = `check-${process.pid}-${Date.now()}`
    await session.executeWrite((tx) =>
      tx.run('CREATE (e:CheckEvent {stream: $stream, position: $position, at: datetime()})', {
        stream,
        position: neo4j.int(1),
      }),
    )
    const read = await session.executeRead((tx) =>
      tx.run('MATCH (e:CheckEvent {stream: $stream}) RETURN e.position AS position', { stream }),
    )
    assert.equal(read.records.length, 1)
    assert.equal(read.records[0].get('position').toNumber(), 1)
    await session.executeWrite((tx) => tx.run('MATCH (e:CheckEvent {stream: $stream}) DELETE e', { stream }))
    console.log(`neo4j ok: ${url} (${info.agent}, Bolt ${info.protocolVersion}; one write, one read)`)
  } finally {
    await session.close()
    await driver.close()
  }
}

main(process.argv[2]).catch((err) => {
  console.error('neo4j check failed:', err)
  process.exit(1)
})
