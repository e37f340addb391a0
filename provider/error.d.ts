export { CommandError, VersionError } from '../index'
