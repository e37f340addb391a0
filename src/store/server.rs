//! Where a SQL server engine (PostgreSQL, MySQL) connects: the options both
//! check alike, the checked [`Target`] and how messages name it, and a
//! store's first connection.

use std::time::Duration;

use sqlx::Connection;

use crate::error::{Result, StoreError};
use crate::store::conns::connect;

/// How long a new connection may take unless `connectTimeout` says.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections of a pool unless `maxConnections` says otherwise (what pg
/// and postgres.js use).
pub const DEFAULT_MAX_CONNECTIONS: usize = 10;
/// The most connections one store may open.
pub const MAX_CONNECTIONS: usize = 1000;

/// Checked connection options: the driver's own, and what messages say
/// of them (never the password).
#[derive(Debug, Clone)]
pub struct Target<O> {
    pub options: O,
    /// "PostgreSQL", "MySQL"
    pub engine: &'static str,
    /// "postgres", "mysql": the scheme of [`Target::location`].
    pub scheme: &'static str,
    /// `host:port`, or the socket.
    pub server: String,
    pub user: String,
    pub database: String,
    pub connect_timeout: Option<Duration>,
}

impl<O> Target<O> {
    /// `scheme://user@host:port/database`, never with the password.
    pub fn location(&self) -> String {
        format!(
            "{}://{}@{}/{}",
            self.scheme, self.user, self.server, self.database
        )
    }

    pub fn cannot_connect(&self, reason: String, tls: bool) -> StoreError {
        StoreError::CannotConnect {
            engine: self.engine,
            server: self.server.clone(),
            user: self.user.clone(),
            tls,
            reason,
        }
    }

    pub fn auth_failed(&self, reason: String) -> StoreError {
        StoreError::AuthFailed {
            engine: self.engine,
            server: self.server.clone(),
            user: self.user.clone(),
            database: self.database.clone(),
            reason,
        }
    }

    pub fn unknown_database(&self) -> StoreError {
        StoreError::UnknownDatabase {
            engine: self.engine,
            server: self.server.clone(),
            user: self.user.clone(),
            database: self.database.clone(),
        }
    }

    /// A failure of an open connection that is not the database's answer
    /// to a statement: the connection broke, or TLS failed.
    pub fn transport_error(&self, err: sqlx::Error) -> StoreError {
        let location = self.location();
        match err {
            sqlx::Error::Io(e) => StoreError::ConnectionLost {
                location,
                reason: format!("{e}; retry when the server is reachable again"),
            },
            sqlx::Error::Protocol(e) => StoreError::ConnectionLost {
                location,
                reason: format!("protocol error: {e}"),
            },
            sqlx::Error::Tls(e) => self.cannot_connect(format!("TLS failed: {e}"), true),
            other => StoreError::Database {
                location,
                reason: other.to_string(),
            },
        }
    }

    /// A store's first connection, opened at once so that a refused
    /// connection, a wrong password or an unknown database is told by
    /// `open` with its own code (`connect_error` classifies the failure).
    pub async fn connect_first<C: Connection<Options = O>>(
        &self,
        connect_error: impl FnOnce(sqlx::Error) -> StoreError,
    ) -> Result<C> {
        connect::<C>(&self.options, self.connect_timeout)
            .await
            .map_err(|e| e.into_store_error(self, connect_error))
    }
}

/// `port` as a TCP port: an integer from 1 to 65535.
pub fn port(port: f64, invalid: impl Fn(&str) -> StoreError) -> Result<u16> {
    if port.fract() == 0.0 && (1.0..=65535.0).contains(&port) {
        Ok(port as u16)
    } else {
        Err(invalid(&format!(
            "port must be an integer from 1 to 65535, got {port}"
        )))
    }
}

/// `connectTimeout` in seconds: [`DEFAULT_CONNECT_TIMEOUT`] when absent,
/// 0 for no limit.
pub fn connect_timeout(
    secs: Option<f64>,
    invalid: impl Fn(&str) -> StoreError,
) -> Result<Option<Duration>> {
    match secs {
        None => Ok(Some(DEFAULT_CONNECT_TIMEOUT)),
        Some(0.0) => Ok(None),
        Some(secs) if secs.is_finite() && secs > 0.0 => Ok(Some(Duration::from_secs_f64(secs))),
        Some(secs) => Err(invalid(&format!(
            "connectTimeout must be a number of seconds (0 for no limit), got {secs}"
        ))),
    }
}

/// `maxConnections`: the connections of a store's pool.
pub fn max_connections(n: Option<f64>) -> Result<usize> {
    match n {
        None => Ok(DEFAULT_MAX_CONNECTIONS),
        Some(n) if n.fract() == 0.0 && (1.0..=MAX_CONNECTIONS as f64).contains(&n) => {
            Ok(n as usize)
        }
        Some(n) => Err(StoreError::invalid_argument(format!(
            "maxConnections must be an integer from 1 to {MAX_CONNECTIONS}, got {n}"
        ))),
    }
}

/// A host and port as messages name them (`[::1]:5432` for IPv6).
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(what: &str) -> StoreError {
        StoreError::invalid_argument(format!("bad: {what}"))
    }

    #[test]
    fn checks_ports_timeouts_and_pool_sizes() {
        assert_eq!(port(5432.0, invalid), Ok(5432));
        for bad in [0.0, 70000.0, 5432.5, f64::NAN] {
            let err = port(bad, invalid).expect_err("bad port");
            assert!(err.to_string().starts_with("bad: port must be"), "{err}");
        }
        assert_eq!(
            connect_timeout(None, invalid),
            Ok(Some(DEFAULT_CONNECT_TIMEOUT))
        );
        assert_eq!(connect_timeout(Some(0.0), invalid), Ok(None));
        assert_eq!(
            connect_timeout(Some(1.5), invalid),
            Ok(Some(Duration::from_millis(1500)))
        );
        assert!(connect_timeout(Some(-1.0), invalid).is_err());
        assert_eq!(max_connections(None), Ok(DEFAULT_MAX_CONNECTIONS));
        assert_eq!(max_connections(Some(3.0)), Ok(3));
        for bad in [0.0, 1.5, 1001.0] {
            let err = max_connections(Some(bad)).expect_err("bad size");
            assert_eq!(err.code(), "INVALID_ARGUMENT");
        }
        assert_eq!(host_port("::1", 5432), "[::1]:5432");
        assert_eq!(host_port("db", 3306), "db:3306");
    }
}
