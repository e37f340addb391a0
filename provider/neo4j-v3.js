'use strict'

// Not available yet in this version of evtstore-rs: the path resolves so that
// code importing it loads, and every function fails with code NOT_SUPPORTED.
const { unsupportedProvider } = require('../lib/unsupported')

const stubs = unsupportedProvider('provider/neo4j-v3', ['createProvider', 'migrate', 'cypher'])
// one assignment per name: Node's ESM loader finds the named exports of a CommonJS module this way
exports.createProvider = stubs.createProvider
exports.migrate = stubs.migrate
exports.cypher = stubs.cypher
