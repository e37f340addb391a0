//! The options of a MySQL/MariaDB store, typed (the JavaScript adapter reads
//! them from a URL or a knex mysql/mysql2 connection), turned into sqlx's
//! connect options; and the classification of a failed first connection.

use napi_derive::napi;
use sqlx::mysql::{MySqlConnectOptions, MySqlDatabaseError, MySqlSslMode};

use crate::error::{Result, StoreError};
use crate::store::pem::check_pems;
use crate::store::server::{connect_timeout, host_port, port};

/// The engine's name in messages.
pub(crate) const ENGINE: &str = "MySQL";

/// The options of a MySQL or MariaDB store. Everything is explicit: nothing
/// is read from a URL or from files here.
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct MysqlOptions {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// 1 to 65535.
    pub port: f64,
    /// A Unix socket path, used instead of host and port.
    pub socket: Option<String>,
    pub user: String,
    pub password: Option<String>,
    pub database: String,
    /// disabled, preferred, required, verify_ca or verify_identity (default
    /// preferred).
    pub ssl_mode: Option<String>,
    /// The certificate authority, as PEM text.
    pub ssl_ca: Option<String>,
    /// The client certificate, as PEM text.
    pub ssl_cert: Option<String>,
    /// The client key, as PEM text.
    pub ssl_key: Option<String>,
    /// Seconds the first connection may take; 0 for no limit (default 10).
    pub connect_timeout: Option<f64>,
    /// Events table name (default "events").
    pub events: Option<String>,
    /// Bookmarks table name (default "bookmarks").
    pub bookmarks: Option<String>,
    /// Connections of the pool, 1 to 1000 (default 10).
    pub max_connections: Option<f64>,
}

/// Checked connection options.
pub(crate) type Target = crate::store::server::Target<MySqlConnectOptions>;

fn invalid(what: &str) -> StoreError {
    StoreError::invalid_argument(format!("the MySQL options are not valid: {what}"))
}

fn ssl_mode(mode: Option<&str>) -> Result<MySqlSslMode> {
    Ok(match mode.map(|m| m.to_ascii_lowercase().replace('-', "_")).as_deref() {
        None | Some("preferred") => MySqlSslMode::Preferred,
        Some("disabled") => MySqlSslMode::Disabled,
        Some("required") => MySqlSslMode::Required,
        Some("verify_ca") => MySqlSslMode::VerifyCa,
        Some("verify_identity") => MySqlSslMode::VerifyIdentity,
        Some(_) => {
            return Err(invalid(&format!(
                "sslMode \"{}\" is not one of disabled, preferred, required, verify_ca, verify_identity",
                mode.unwrap_or_default()
            )))
        }
    })
}

/// Checks the options (never repeating the password) and builds sqlx's.
pub(crate) fn target(o: &MysqlOptions) -> Result<Target> {
    let socket = o.socket.as_deref().filter(|s| !s.is_empty());
    if socket.is_none() && o.host.trim().is_empty() {
        return Err(invalid("host is empty"));
    }
    let port = port(o.port, invalid)?;
    if o.user.is_empty() {
        return Err(invalid("user is empty"));
    }
    if o.database.is_empty() {
        return Err(invalid(
            "database is empty: name the database in the URL (mysql://user@host/database)",
        ));
    }
    let connect_timeout = connect_timeout(o.connect_timeout, invalid)?;
    check_pems(
        &[
            (&o.ssl_ca, "sslCa", "CERTIFICATE"),
            (&o.ssl_cert, "sslCert", "CERTIFICATE"),
            (&o.ssl_key, "sslKey", "PRIVATE KEY"),
        ],
        invalid,
    )?;
    // utf8mb4 for events of any text; sqlx sets the session's time zone to
    // UTC, so DATETIME values are written and read as UTC.
    let mut options = MySqlConnectOptions::new()
        .port(port)
        .username(&o.user)
        .database(&o.database)
        .ssl_mode(ssl_mode(o.ssl_mode.as_deref())?)
        .charset("utf8mb4");
    options = match socket {
        Some(path) => options.socket(path),
        None => options.host(&o.host),
    };
    if let Some(password) = &o.password {
        options = options.password(password);
    }
    if let Some(pem) = &o.ssl_ca {
        options = options.ssl_ca_from_pem(pem.as_bytes().to_vec());
    }
    if let Some(pem) = &o.ssl_cert {
        options = options.ssl_client_cert_from_pem(pem.as_bytes());
    }
    if let Some(pem) = &o.ssl_key {
        options = options.ssl_client_key_from_pem(pem.as_bytes());
    }
    let server = match socket {
        Some(path) => path.to_string(),
        None => host_port(&o.host, port),
    };
    Ok(Target {
        options,
        engine: ENGINE,
        scheme: "mysql",
        server,
        user: o.user.clone(),
        database: o.database.clone(),
        connect_timeout,
    })
}

/// What a failed connection attempt is told as.
pub(crate) fn connect_error(target: &Target, err: sqlx::Error) -> StoreError {
    let cannot = |reason: String, tls: bool| target.cannot_connect(reason, tls);
    match err {
        sqlx::Error::Database(db) => {
            let number = db
                .try_downcast_ref::<MySqlDatabaseError>()
                .map(MySqlDatabaseError::number)
                .unwrap_or(0);
            match number {
                1044 | 1045 | 1698 => {
                    target.auth_failed(format!("{} (error {number})", db.message()))
                }
                1049 => target.unknown_database(),
                1040 | 1203 => cannot(
                    format!(
                        "{} (error {number}): the server has no free connection slot, retry later or raise its max_connections",
                        db.message()
                    ),
                    false,
                ),
                _ => cannot(format!("{} (error {number})", db.message()), false),
            }
        }
        sqlx::Error::Io(e) => cannot(
            format!("{e}; check that the server runs and listens on this address"),
            false,
        ),
        sqlx::Error::Tls(e) => cannot(format!("TLS failed: {e}"), true),
        other => cannot(other.to_string(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::server::DEFAULT_CONNECT_TIMEOUT;

    fn options() -> MysqlOptions {
        MysqlOptions {
            host: "db.example".into(),
            port: 3306.0,
            user: "app".into(),
            password: Some("secret".into()),
            database: "shop".into(),
            ..MysqlOptions::default()
        }
    }

    #[test]
    fn location_never_shows_the_password() {
        let t = target(&options()).unwrap();
        assert_eq!(t.location(), "mysql://app@db.example:3306/shop");
        assert_eq!(t.connect_timeout, Some(DEFAULT_CONNECT_TIMEOUT));
    }

    #[test]
    fn bad_options_are_named() {
        let bad = |o: MysqlOptions| target(&o).unwrap_err().to_string();
        assert!(bad(MysqlOptions {
            port: 0.5,
            ..options()
        })
        .contains("port must be an integer"));
        assert!(bad(MysqlOptions {
            database: String::new(),
            ..options()
        })
        .contains("database is empty"));
        assert!(bad(MysqlOptions {
            ssl_mode: Some("sometimes".into()),
            ..options()
        })
        .contains("sslMode \"sometimes\""));
        assert!(bad(MysqlOptions {
            ssl_ca: Some("/etc/ssl/ca.pem".into()),
            ..options()
        })
        .contains("sslCa is not PEM text"));
        assert!(!bad(MysqlOptions {
            password: Some("hunter2".into()),
            port: 70000.0,
            ..options()
        })
        .contains("hunter2"));
    }

    #[test]
    fn a_socket_replaces_the_host() {
        let t = target(&MysqlOptions {
            host: String::new(),
            socket: Some("/run/mysqld/mysqld.sock".into()),
            ..options()
        })
        .unwrap();
        assert_eq!(t.server, "/run/mysqld/mysqld.sock");
    }
}
