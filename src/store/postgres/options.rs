//! The options of a PostgreSQL store, typed (the JavaScript adapter reads
//! them from a URL, a postgres.js `sql` or a pg Pool/Client), turned into
//! sqlx's connect options; and the classification of a failed first
//! connection.

use std::path::Path;
use std::str::FromStr;

use napi_derive::napi;
use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::error::{Result, StoreError};
use crate::store::pem::check_pems;
use crate::store::server::{connect_timeout, host_port, port};

/// The engine's name in messages.
pub(crate) const ENGINE: &str = "PostgreSQL";
/// `application_name` of our connections unless the options set one.
pub(super) const APPLICATION_NAME: &str = "evtstore-rs";

/// The options of a PostgreSQL store. Everything is explicit: nothing is
/// read from a URL or from files here.
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct PostgresOptions {
    /// Host name or IP address (IPv6 without brackets), or a Unix socket
    /// directory (starts with "/").
    pub host: String,
    /// 1 to 65535.
    pub port: f64,
    pub user: String,
    pub password: Option<String>,
    pub database: String,
    /// disable, allow, prefer, require, verify-ca or verify-full (default
    /// prefer).
    pub ssl_mode: Option<String>,
    /// The certificate authority, as PEM text.
    pub ssl_root_cert: Option<String>,
    /// The client certificate, as PEM text.
    pub ssl_cert: Option<String>,
    /// The client key, as PEM text.
    pub ssl_key: Option<String>,
    /// Default "evtstore-rs".
    pub application_name: Option<String>,
    /// libpq's `options`: `-c name=value` settings for the session.
    pub options: Option<String>,
    /// Seconds the first connection may take; 0 for no limit (default 10).
    pub connect_timeout: Option<f64>,
    /// Events table name (default "events").
    pub events: Option<String>,
    /// Bookmarks table name (default "bookmarks").
    pub bookmarks: Option<String>,
    /// Connections of the pool, 1 to 1000 (default 10).
    pub max_connections: Option<f64>,
    /// Behind a transaction-mode pooler (PgBouncer, RDS Proxy): no named
    /// prepared statements (each transaction may run on another server
    /// connection) and no LISTEN; handlers probe for appends instead.
    pub pgbouncer: Option<bool>,
}

/// Checked connection options.
pub(crate) type Target = crate::store::server::Target<PgConnectOptions>;

fn invalid(what: &str) -> StoreError {
    StoreError::invalid_argument(format!("the PostgreSQL options are not valid: {what}"))
}

/// Checks the options (never repeating the password) and builds sqlx's.
pub(crate) fn target(o: &PostgresOptions) -> Result<Target> {
    if o.host.trim().is_empty() {
        return Err(invalid("host is empty"));
    }
    let port = port(o.port, invalid)?;
    if o.user.is_empty() {
        return Err(invalid("user is empty"));
    }
    if o.database.is_empty() {
        return Err(invalid("database is empty"));
    }
    let ssl_mode = match o.ssl_mode.as_deref() {
        None => PgSslMode::Prefer,
        Some(mode) => PgSslMode::from_str(mode).map_err(|_| {
            invalid(&format!(
                "sslMode \"{mode}\" is not one of disable, allow, prefer, require, verify-ca, verify-full"
            ))
        })?,
    };
    let connect_timeout = connect_timeout(o.connect_timeout, invalid)?;
    let mut options = PgConnectOptions::new_without_pgpass()
        .port(port)
        .username(&o.user)
        .database(&o.database)
        .ssl_mode(ssl_mode)
        .application_name(o.application_name.as_deref().unwrap_or(APPLICATION_NAME));
    let socket = o.host.starts_with('/');
    options = if socket {
        options.socket(Path::new(&o.host))
    } else {
        options.host(&o.host)
    };
    let password = o
        .password
        .clone()
        .or_else(|| pgpass_password(&o.host, port, &o.database, &o.user));
    if let Some(password) = &password {
        options = options.password(password);
    }
    check_pems(
        &[
            (&o.ssl_root_cert, "sslRootCert", "CERTIFICATE"),
            (&o.ssl_cert, "sslCert", "CERTIFICATE"),
            (&o.ssl_key, "sslKey", "PRIVATE KEY"),
        ],
        invalid,
    )?;
    if let Some(pem) = &o.ssl_root_cert {
        options = options.ssl_root_cert_from_pem(pem.as_bytes().to_vec());
    }
    if let Some(pem) = &o.ssl_cert {
        options = options.ssl_client_cert_from_pem(pem.as_bytes());
    }
    if let Some(pem) = &o.ssl_key {
        options = options.ssl_client_key_from_pem(pem.as_bytes());
    }
    if let Some(settings) = &o.options {
        options = options.options(backend_settings(settings)?);
    }
    if o.pgbouncer == Some(true) {
        // sqlx then sends every statement unnamed, within its own sync
        options = options.statement_cache_capacity(0);
    }
    let server = if socket {
        format!("{} (port {port})", o.host)
    } else {
        host_port(&o.host, port)
    };
    Ok(Target {
        options,
        engine: ENGINE,
        scheme: "postgres",
        server,
        user: o.user.clone(),
        database: o.database.clone(),
        connect_timeout,
    })
}

/// The password the password file (`PGPASSFILE`, else `~/.pgpass`) holds
/// for this connection, read as libpq reads it: ignored when others may
/// read it; the first line whose host, port, database and user match (`*`
/// matches anything; a socket connection matches `localhost`).
fn pgpass_password(host: &str, port: u16, database: &str, user: &str) -> Option<String> {
    let path = std::env::var_os("PGPASSFILE")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".pgpass")))?;
    let meta = std::fs::metadata(&path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if !meta.is_file() || meta.permissions().mode() & 0o077 != 0 {
            return None;
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text = std::fs::read_to_string(&path).ok()?;
    let host = if host.starts_with('/') {
        "localhost"
    } else {
        host
    };
    let port = port.to_string();
    text.lines().find_map(|line| {
        let fields = pgpass_fields(line)?;
        let wanted = [host, &port, database, user];
        fields[..4]
            .iter()
            .zip(wanted)
            .all(|(field, want)| field == "*" || field == want)
            .then(|| fields[4].clone())
    })
}

/// The five fields of a password-file line (`\:` and `\\` unescaped), or
/// `None` for a comment, a blank line or a malformed one.
fn pgpass_fields(line: &str) -> Option<Vec<String>> {
    if line.trim().is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut()?.push(chars.next().unwrap_or('\\')),
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut()?.push(c),
        }
    }
    (fields.len() == 5).then_some(fields)
}

/// The `name=value` pairs of libpq's `options` (`-c name=value`,
/// `-cname=value` or `--name=value`, separated by spaces; a backslash
/// keeps the next character, a space included, and is passed on as it is,
/// since sqlx writes each pair back as `-c name=value`).
fn backend_settings(text: &str) -> Result<Vec<(String, String)>> {
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                word.push(c);
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let bad = || {
        invalid(&format!(
            "options \"{text}\" holds something other than -c name=value settings"
        ))
    };
    let mut pairs = Vec::new();
    let mut words = words.into_iter();
    while let Some(w) = words.next() {
        let setting = if w == "-c" {
            words.next().ok_or_else(bad)?
        } else if let Some(rest) = w.strip_prefix("--").or_else(|| w.strip_prefix("-c")) {
            rest.to_string()
        } else {
            return Err(bad());
        };
        let (name, value) = setting.split_once('=').ok_or_else(bad)?;
        if name.is_empty() {
            return Err(bad());
        }
        pairs.push((name.to_string(), value.to_string()));
    }
    Ok(pairs)
}

/// Classifies a failure of the first connection.
pub(crate) fn connect_error(target: &Target, err: sqlx::Error) -> StoreError {
    let cannot = |reason: String| {
        let tls = reason.starts_with("TLS failed");
        target.cannot_connect(reason, tls)
    };
    match err {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let message = db.message().to_string();
            match code.as_str() {
                "3D000" => target.unknown_database(),
                c if c.starts_with("28") => {
                    target.auth_failed(format!("{message} (SQLSTATE {c})"))
                }
                "53300" => cannot(format!(
                    "{message}: the server has no free connection slot, lower maxConnections or raise max_connections"
                )),
                "57P03" => cannot(format!("{message}: the server is starting or stopping, retry")),
                c => cannot(format!("{message} (SQLSTATE {c})")),
            }
        }
        sqlx::Error::Io(e) => {
            let reason = match e.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    "connection refused: check that PostgreSQL is running and listens on that host and port".to_string()
                }
                std::io::ErrorKind::NotFound if target.options.get_socket().is_some() => {
                    "the socket does not exist: check that PostgreSQL is running and the socket directory".to_string()
                }
                // What rustls reports (a certificate it does not trust, ...).
                std::io::ErrorKind::InvalidData => format!(
                    "TLS failed: {e} (check sslmode and sslrootcert: verify-ca and verify-full need the server's CA, and a certificate that is not itself a CA)"
                ),
                std::io::ErrorKind::TimedOut => {
                    "the connection timed out: check the host and port, and that no firewall drops it".to_string()
                }
                // The server accepted the connection and then dropped it:
                // the address is right (a restart or shutdown does this).
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof => format!(
                    "{e}: the server closed the connection while it was being opened (it may be restarting or shutting down); retry"
                ),
                _ => format!("{e}: check the host name and port"),
            };
            cannot(reason)
        }
        sqlx::Error::Tls(e) => cannot(format!(
            "TLS failed: {e} (check sslmode and the certificates; sslmode=disable turns TLS off)"
        )),
        sqlx::Error::Protocol(e) => cannot(format!(
            "the server did not answer as PostgreSQL does ({e}): check the port"
        )),
        // A certificate or key rustls cannot use: retrying will not help.
        sqlx::Error::Configuration(e) => cannot(format!(
            "TLS failed: the certificate or key cannot be used ({e}); check sslCert and sslKey"
        )),
        other => cannot(other.to_string()),
    }
}

#[cfg(test)]
impl PostgresOptions {
    /// The options of a `postgres://user:password@host:port/database` URL
    /// (tests only: the product's URLs are read by the JavaScript adapter).
    pub fn from_test_url(url: &str) -> Self {
        let url = url::Url::parse(url).expect("a postgres:// URL");
        let decode = |s: &str| {
            let bytes = s.as_bytes();
            let mut out = Vec::with_capacity(bytes.len());
            let mut i = 0;
            while i < bytes.len() {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match (bytes[i], hex) {
                    (b'%', Some(b)) => {
                        out.push(b);
                        i += 3;
                    }
                    (b, _) => {
                        out.push(b);
                        i += 1;
                    }
                }
            }
            String::from_utf8(out).expect("UTF-8 in the test URL")
        };
        let query = |key: &str| {
            url.query_pairs()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.into_owned())
        };
        PostgresOptions {
            host: query("host").unwrap_or_else(|| {
                url.host_str()
                    .unwrap_or("localhost")
                    .trim_matches(|c| c == '[' || c == ']')
                    .to_string()
            }),
            port: f64::from(url.port().unwrap_or(5432)),
            user: decode(url.username()),
            password: url.password().map(decode),
            database: decode(url.path().trim_start_matches('/')),
            ssl_mode: query("sslmode"),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::pem::is_pem;
    use crate::store::server::DEFAULT_CONNECT_TIMEOUT;

    fn options() -> PostgresOptions {
        PostgresOptions {
            host: "db.example".into(),
            port: 6543.0,
            user: "bob".into(),
            password: Some("hunter2xyz".into()),
            database: "app".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_connection_dropped_while_opening_is_no_address_problem() {
        let t = target(&options()).expect("valid");
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let err = connect_error(&t, sqlx::Error::Io(reset));
        assert_eq!(err.code(), "CANNOT_CONNECT");
        assert!(err.retryable());
        let text = err.to_string();
        assert!(
            text.contains("restarting") && !text.contains("host name"),
            "{text}"
        );
        let other = std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "no address");
        assert!(connect_error(&t, sqlx::Error::Io(other))
            .to_string()
            .contains("check the host name and port"));
        let tls = std::io::Error::new(std::io::ErrorKind::InvalidData, "unknown issuer");
        assert!(!connect_error(&t, sqlx::Error::Io(tls)).retryable());
    }

    #[test]
    fn checks_the_options_and_never_repeats_the_password() {
        let t = target(&PostgresOptions {
            ssl_mode: Some("require".into()),
            ..options()
        })
        .expect("valid");
        assert_eq!(t.server, "db.example:6543");
        assert_eq!(t.location(), "postgres://bob@db.example:6543/app");
        assert!(matches!(t.options.get_ssl_mode(), PgSslMode::Require));
        assert_eq!(t.options.get_application_name(), Some(APPLICATION_NAME));
        assert_eq!(t.connect_timeout, Some(DEFAULT_CONNECT_TIMEOUT));
        let t = target(&PostgresOptions {
            host: "::1".into(),
            connect_timeout: Some(0.0),
            application_name: Some("mine".into()),
            ..options()
        })
        .expect("valid");
        assert_eq!(t.server, "[::1]:6543");
        assert_eq!(t.connect_timeout, None);
        assert_eq!(t.options.get_application_name(), Some("mine"));
        let t = target(&PostgresOptions {
            host: "/run/postgresql".into(),
            ..options()
        })
        .expect("valid");
        assert_eq!(t.server, "/run/postgresql (port 6543)");
        assert!(t.options.get_socket().is_some());

        let bad = [
            PostgresOptions {
                host: " ".into(),
                ..options()
            },
            PostgresOptions {
                port: 0.0,
                ..options()
            },
            PostgresOptions {
                port: 70000.0,
                ..options()
            },
            PostgresOptions {
                port: 5432.5,
                ..options()
            },
            PostgresOptions {
                user: String::new(),
                ..options()
            },
            PostgresOptions {
                database: String::new(),
                ..options()
            },
            PostgresOptions {
                ssl_mode: Some("sometimes".into()),
                ..options()
            },
            PostgresOptions {
                connect_timeout: Some(-1.0),
                ..options()
            },
            PostgresOptions {
                options: Some("search_path=x".into()),
                ..options()
            },
        ];
        for o in bad {
            let err = target(&o).expect_err("invalid");
            assert_eq!(err.code(), "INVALID_ARGUMENT", "{o:?}");
            let msg = err.to_string();
            assert!(
                msg.starts_with("the PostgreSQL options are not valid: "),
                "{msg}"
            );
            assert!(!msg.contains("hunter2xyz"), "{msg}");
        }
    }

    #[test]
    fn refuses_what_is_not_pem_and_reads_password_file_lines() {
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let key = "-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n";
        assert!(is_pem(cert, "CERTIFICATE") && is_pem(key, "PRIVATE KEY"));
        assert!(!is_pem(cert, "PRIVATE KEY") && !is_pem("/etc/ssl/ca.pem", "CERTIFICATE"));
        for o in [
            PostgresOptions {
                ssl_root_cert: Some("/etc/ssl/ca.pem".into()),
                ..options()
            },
            PostgresOptions {
                ssl_cert: Some(key.into()),
                ..options()
            },
            PostgresOptions {
                ssl_key: Some(cert.into()),
                ..options()
            },
        ] {
            let err = target(&o).expect_err("not PEM");
            assert_eq!(err.code(), "INVALID_ARGUMENT");
            assert!(err.to_string().contains("not PEM text"), "{err}");
        }
        assert!(target(&PostgresOptions {
            ssl_root_cert: Some(cert.into()),
            ssl_cert: Some(cert.into()),
            ssl_key: Some(key.into()),
            ..options()
        })
        .is_ok());

        assert_eq!(
            pgpass_fields(r"db\:1:5432:*:bob:pa\:ss\\w").expect("five fields"),
            vec!["db:1", "5432", "*", "bob", r"pa:ss\w"]
        );
        for skipped in ["", "# host:5432:db:u:p", "host:5432:db:u"] {
            assert!(pgpass_fields(skipped).is_none(), "{skipped}");
        }
        // as in libpq, the password is the rest of the line
        assert_eq!(pgpass_fields("a:b:c:d:e:f").expect("five")[4], "e:f");
        let config = sqlx::Error::Configuration("no keys found pem file".into());
        let err = connect_error(&target(&options()).expect("valid"), config);
        assert_eq!(err.code(), "CANNOT_CONNECT");
        assert!(!err.retryable(), "{err}");
    }

    #[test]
    fn reads_libpq_options_into_settings() {
        assert_eq!(
            backend_settings(
                r"-c search_path=app,\ public  -cstatement_timeout=5000 --work_mem=4MB"
            )
            .expect("valid"),
            vec![
                ("search_path".to_string(), r"app,\ public".to_string()),
                ("statement_timeout".to_string(), "5000".to_string()),
                ("work_mem".to_string(), "4MB".to_string()),
            ]
        );
        assert!(backend_settings("").expect("empty").is_empty());
        for bad in ["-c", "-c =x", "-B 100", "-c search_path"] {
            assert!(backend_settings(bad).is_err(), "{bad}");
        }
    }
}
