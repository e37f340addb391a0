'use strict'
// TLS settings: the sslmode and certificates that Node TLS options (the `ssl`
// object postgres.js and pg hand to tls.connect) amount to, and the PEM text
// of every certificate and key, read here from the files the user names: the
// native store takes PEM text, never a file name.

const fs = require('fs')
const { codedError } = require('../../errors')
const { describe } = require('../../util')
const { nonEmpty, notSupported } = require('./settings')

/**
 * PEM text from a string, a Buffer or an array of them (Node's tls options).
 * @param {any} value
 * @param {string} what
 * @returns {string}
 */
function pemText(value, what) {
  if (Array.isArray(value)) return value.map((v) => pemText(v, what)).join('\n')
  if (typeof value === 'string') return value
  if (value && typeof value === 'object' && typeof value.toString === 'function' && ArrayBuffer.isView(value)) {
    return value.toString()
  }
  throw notSupported(`${what} is ${describe(value)}: give PEM text (a string or a Buffer)`)
}

/**
 * @typedef {object} Tls
 * @property {string} sslmode
 * @property {import('./settings').Certificate} [sslRootCert]
 * @property {import('./settings').Certificate} [sslCert]
 * @property {import('./settings').Certificate} [sslKey]
 */

/**
 * sslmode and certificates from Node TLS options: rejectUnauthorized false
 * encrypts without checking the certificate; a custom checkServerIdentity
 * checks the CA only; otherwise Node checks both. ca, cert and key are PEM
 * text; sslrootcert, sslcert and sslkey (pg-connection-string's) name files.
 *
 * @param {Record<string, any>} ssl
 * @param {string} what e.g. 'pool.options.ssl'
 * @returns {Tls}
 */
function fromTlsOptions(ssl, what) {
  for (const unsupported of ['pfx', 'passphrase', 'secureContext']) {
    if (nonEmpty(ssl[unsupported])) {
      throw notSupported(`${what}.${unsupported} is not supported yet: give ca, cert and key as PEM text`)
    }
  }
  let sslmode = 'verify-full'
  if (ssl.rejectUnauthorized === false) sslmode = 'require'
  else if (typeof ssl.checkServerIdentity === 'function') sslmode = 'verify-ca'
  /** @type {Tls} */
  const tls = { sslmode }
  if (nonEmpty(ssl.ca)) tls.sslRootCert = { pem: pemText(ssl.ca, `${what}.ca`) }
  if (nonEmpty(ssl.cert)) tls.sslCert = { pem: pemText(ssl.cert, `${what}.cert`) }
  if (nonEmpty(ssl.key)) tls.sslKey = { pem: pemText(ssl.key, `${what}.key`) }
  if (nonEmpty(ssl.sslrootcert)) tls.sslRootCert = { file: String(ssl.sslrootcert) }
  if (nonEmpty(ssl.sslcert)) tls.sslCert = { file: String(ssl.sslcert) }
  if (nonEmpty(ssl.sslkey)) tls.sslKey = { file: String(ssl.sslkey) }
  return tls
}

/** The libpq names of the certificate settings, for messages. */
const PARAMETER = { sslRootCert: 'sslrootcert', sslCert: 'sslcert', sslKey: 'sslkey' }

/**
 * The PEM text of a certificate or key, read from its file if it names one.
 * A file that cannot be read fails the connection (CANNOT_CONNECT, not
 * retryable), as a certificate the server refuses does: the settings are
 * wrong, and retrying will not help.
 * @param {import('./settings').Certificate | undefined} cert
 * @param {'sslRootCert' | 'sslCert' | 'sslKey'} name
 * @returns {Promise<string | undefined>}
 */
async function readPem(cert, name) {
  if (!cert) return undefined
  if ('pem' in cert) return cert.pem
  try {
    return await fs.promises.readFile(cert.file, 'utf8')
  } catch (cause) {
    const err = codedError(
      'CANNOT_CONNECT',
      `TLS failed: the ${PARAMETER[name]} file ${JSON.stringify(cert.file)} cannot be read ` +
        `(${cause && /** @type {any} */ (cause).code}): check the file name and its permissions`
    )
    // the shape of the core's connection errors: a user's retry logic reads these
    err.engine = 'postgres'
    err.retryable = false
    err.cause = cause
    throw err
  }
}

module.exports = { pemText, fromTlsOptions, readPem }
