'use strict'

// evtstore's src/domain-v2, backed by this package.
const { createDomain, createDomainV2 } = require('../../index')

module.exports = { createDomain, createDomainV2 }
