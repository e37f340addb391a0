// evtstore's provider/neo4j-v3 (Neo4j 3.5 there), run by the Rust core over
// its own Bolt connections: Neo4j 3.5, 4.4 and 5.x. The same engine and
// options as provider/neo4j (only the provider's `driver` name differs), so
// the same typings.
export * from './neo4j'
