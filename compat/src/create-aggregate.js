'use strict'

// evtstore's src/create-aggregate, backed by this package.
const { createAggregate, createProvidedAggregate, createPersistedAggregate } = require('../../index')

module.exports = { createAggregate, createProvidedAggregate, createPersistedAggregate }
