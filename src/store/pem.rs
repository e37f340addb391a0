//! Certificates and keys passed as PEM text (the server engines' TLS
//! options), checked before connecting: rustls skips what it cannot read.

use crate::error::{Result, StoreError};

/// Whether `text` holds a PEM block of this kind (`PRIVATE KEY` also
/// matches `RSA PRIVATE KEY` and `EC PRIVATE KEY`).
pub fn is_pem(text: &str, kind: &str) -> bool {
    text.lines().any(|line| {
        line.trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
            .is_some_and(|label| label.ends_with(kind))
    })
}

/// Checks each given `(pem, option name, kind)`; `invalid` words the error
/// for the engine.
pub fn check_pems(
    pems: &[(&Option<String>, &str, &str)],
    invalid: impl Fn(&str) -> StoreError,
) -> Result<()> {
    for (pem, what, kind) in pems {
        if pem.as_deref().is_some_and(|pem| !is_pem(pem, kind)) {
            return Err(invalid(&format!(
                "{what} is not PEM text holding a {}: pass the file's contents, not its name",
                kind.to_ascii_lowercase()
            )));
        }
    }
    Ok(())
}
