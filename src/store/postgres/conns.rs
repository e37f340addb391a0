//! The store's own connections, and the retry of an operation whose
//! connection broke.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::Connection;

use super::options::Target;

/// How long an operation waits for a free connection of the pool.
pub(super) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts of an operation whose connection broke (idle connections are
/// stale after a server restart: on the first broken one they are all
/// discarded, and the next attempt opens a new connection).
pub(super) const MAX_ATTEMPTS: usize = 3;

/// Runs `$body` (a future using `$conn: &mut PgConnection`) on a
/// connection of the store, again on another one when its connection broke
/// (up to [`MAX_ATTEMPTS`] times; only for operations safe to repeat).
/// Evaluates to `Result<T>`. (Paths are spelled out: the macro expands in
/// the modules that use it.)
macro_rules! retrying {
    ($self:expr, $table:expr, |$conn:ident| $body:expr) => {{
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut guard = match $self.conns.acquire().await {
                Ok(g) => g,
                Err(e) => break Err($self.acquire_error(e)),
            };
            let result = {
                let $conn: &mut ::sqlx::postgres::PgConnection = guard.conn();
                $body.await
            };
            match result {
                Ok(v) => {
                    guard.healthy();
                    break Ok(v);
                }
                Err(e) if $crate::store::postgres::errors::is_lost(&e) => {
                    // A server restart breaks every idle connection too.
                    $self.conns.discard_idle();
                    if attempt < $crate::store::postgres::conns::MAX_ATTEMPTS {
                        continue;
                    }
                    break Err($self.db_error(e, $table));
                }
                Err(e) => {
                    guard.healthy();
                    break Err($self.db_error(e, $table));
                }
            }
        }
    }};
}
pub(super) use retrying;

/// Why no connection could be had.
#[derive(Debug)]
pub(super) enum AcquireError {
    Closed,
    TimedOut,
    ConnectTimedOut(Duration),
    Connect(sqlx::Error),
}

/// The store's connections: at most `max`, idle ones reused most recent
/// first, new ones opened on demand. (sqlx's pool was measured to add about
/// 100 us to every statement: it spawns a task and pings the server each
/// time a connection is handed back.)
pub(super) struct Conns {
    options: PgConnectOptions,
    connect_timeout: Option<Duration>,
    pub(super) max: usize,
    permits: tokio::sync::Semaphore,
    idle: Mutex<Vec<PgConnection>>,
    closed: AtomicBool,
}

/// A connection lent out by [`Conns`]. It goes back to the idle list only
/// when marked [`ConnGuard::healthy`] (the statement ran to its end, so the
/// connection is in a known state); otherwise it is closed.
pub(super) struct ConnGuard<'a> {
    conns: &'a Conns,
    conn: Option<PgConnection>,
    healthy: bool,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl Conns {
    pub(super) fn new(target: &Target, max: usize, first: PgConnection) -> Self {
        Conns {
            options: target.options.clone(),
            connect_timeout: target.connect_timeout,
            max,
            permits: tokio::sync::Semaphore::new(max),
            idle: Mutex::new(vec![first]),
            closed: AtomicBool::new(false),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<PgConnection>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) async fn acquire(&self) -> std::result::Result<ConnGuard<'_>, AcquireError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(AcquireError::Closed);
        }
        let permit = match tokio::time::timeout(ACQUIRE_TIMEOUT, self.permits.acquire()).await {
            Err(_) => return Err(AcquireError::TimedOut),
            Ok(Err(_)) => return Err(AcquireError::Closed),
            Ok(Ok(p)) => p,
        };
        let idle = self.idle().pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let connect = PgConnection::connect_with(&self.options);
                match self.connect_timeout {
                    Some(limit) => tokio::time::timeout(limit, connect)
                        .await
                        .map_err(|_| AcquireError::ConnectTimedOut(limit))?,
                    None => connect.await,
                }
                .map_err(AcquireError::Connect)?
            }
        };
        Ok(ConnGuard {
            conns: self,
            conn: Some(conn),
            healthy: false,
            _permit: permit,
        })
    }

    /// Forgets the idle connections (after one turned out broken).
    pub(super) fn discard_idle(&self) {
        let idle = std::mem::take(&mut *self.idle());
        drop(idle);
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(super) async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.permits.close();
        let idle = std::mem::take(&mut *self.idle());
        for conn in idle {
            let _ = conn.close().await;
        }
    }
}

impl ConnGuard<'_> {
    pub(super) fn conn(&mut self) -> &mut PgConnection {
        match self.conn.as_mut() {
            Some(conn) => conn,
            // Only `drop` takes it out.
            None => unreachable!("a lent connection is there until dropped"),
        }
    }

    pub(super) fn healthy(&mut self) {
        self.healthy = true;
    }
}

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.healthy && !self.conns.is_closed() {
            self.conns.idle().push(conn);
        } else if let Ok(rt) = tokio::runtime::Handle::try_current() {
            // Say goodbye to the server instead of just dropping the socket.
            rt.spawn(async move {
                let _ = conn.close().await;
            });
        }
    }
}
