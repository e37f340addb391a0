'use strict'

// Not available yet in this version of evtstore-rs: the path resolves so that
// code importing it loads, and every function fails with code NOT_SUPPORTED.
const { unsupportedProvider } = require('../lib/unsupported')

module.exports = unsupportedProvider('provider/mongo', ['createProvider', 'migrate'])
