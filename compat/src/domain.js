'use strict'

// evtstore's src/domain, backed by this package.
const { createDomainV1 } = require('../../index')

module.exports = { createDomainV1 }
