// evtstore's src/domain-v2, backed by this package.
export { createDomain, createDomainV2 } from '../../index'
