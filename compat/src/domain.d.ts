// evtstore's src/domain, backed by this package.
export { createDomainV1 } from '../../index'
