'use strict'
// evtstore's provider/neo4j-v3 (for Neo4j 3.5 there): a neo4j-driver Driver (or a Promise of one), or
// { url, user, password, database? }. The Rust core stores the events over
// its own Bolt connections: the Driver only tells where the server is and
// who logs in; neo4j-driver is never required here. Serves Neo4j 3.5, 4.4
// and 5.x.

const { neo4jEntry } = require('../lib/engines/neo4j/entry')

const entry = neo4jEntry('neo4j-v3')
// one assignment per name: Node's ESM loader finds the named exports of a CommonJS module this way
exports.createProvider = entry.createProvider
exports.migrate = entry.migrate
exports.cypher = entry.cypher
