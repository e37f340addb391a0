// evtstore's src/create-aggregate, backed by this package.
export { createAggregate, createProvidedAggregate, createPersistedAggregate } from '../../index'
