//! A server engine's own connections (PostgreSQL, MySQL), and the retry of
//! an operation whose connection broke.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use sqlx::Connection;

use crate::error::StoreError;
use crate::store::server::Target;

/// How long an operation waits for a free connection of the pool.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts of an operation whose connection broke (idle connections are
/// stale after a server restart: on the first broken one they are all
/// discarded, and the next attempt opens a new connection).
pub const MAX_ATTEMPTS: usize = 3;

/// Runs `$body` (a future using `$conn`, a connection of the store) on a
/// connection of the store, again on another one when its connection broke
/// (up to [`MAX_ATTEMPTS`] times; only for operations safe to repeat).
/// Evaluates to `Result<T>`. The engine (`$self`) has `conns`,
/// `acquire_error`, `db_error(e, table)` and `is_lost(e)`. (Paths are
/// spelled out: the macro expands in the modules that use it.)
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
                let held = guard.conn();
                // behind a transaction-mode pooler the statement runs in a
                // transaction of its own (see the engine's `pin`)
                match $self.pin(&mut *held).await {
                    Err(e) => Err(e),
                    Ok(()) => {
                        let done = {
                            let $conn = &mut *held;
                            $body.await
                        };
                        $self.unpin(&mut *held, done).await
                    }
                }
            };
            match result {
                Ok(v) => {
                    guard.healthy();
                    break Ok(v);
                }
                Err(e) if $self.is_lost(&e) => {
                    // A server restart breaks every idle connection too.
                    $self.conns.discard_idle();
                    if attempt < $crate::store::conns::MAX_ATTEMPTS {
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
pub(crate) use retrying;

/// Why no connection could be had.
#[derive(Debug)]
pub enum AcquireError {
    Closed,
    TimedOut,
    Connect(ConnectError),
}

/// Why a new connection could not be opened.
#[derive(Debug)]
pub enum ConnectError {
    /// No answer within the connect timeout.
    TimedOut(Duration),
    Failed(sqlx::Error),
}

/// Opens one connection, within `limit` when there is one.
pub async fn connect<C: Connection>(
    options: &C::Options,
    limit: Option<Duration>,
) -> std::result::Result<C, ConnectError> {
    let connect = C::connect_with(options);
    match limit {
        Some(limit) => tokio::time::timeout(limit, connect)
            .await
            .map_err(|_| ConnectError::TimedOut(limit))?,
        None => connect.await,
    }
    .map_err(ConnectError::Failed)
}

impl ConnectError {
    /// What the user is told; a failure the server or the network reported
    /// is classified by the engine's `connect_error`.
    pub fn into_store_error<O>(
        self,
        target: &Target<O>,
        connect_error: impl FnOnce(sqlx::Error) -> StoreError,
    ) -> StoreError {
        match self {
            ConnectError::TimedOut(limit) => target.cannot_connect(
                format!(
                    "no answer within {} s: check the host and port, and that no firewall drops the connection",
                    limit.as_secs_f64()
                ),
                false,
            ),
            ConnectError::Failed(e) => connect_error(e),
        }
    }
}

impl AcquireError {
    /// What the user is told when no connection could be had (`reopen`:
    /// what reopens a closed store, `max`: the pool's size).
    pub fn into_store_error<O>(
        self,
        target: &Target<O>,
        reopen: &'static str,
        max: usize,
        connect_error: impl FnOnce(sqlx::Error) -> StoreError,
    ) -> StoreError {
        match self {
            AcquireError::Closed => StoreError::StoreClosed {
                location: target.location(),
                reopen,
            },
            AcquireError::TimedOut => StoreError::Timeout {
                location: target.location(),
                reason: format!(
                    "no connection of the pool became free within {} s: all {max} of them stayed busy (raise maxConnections, or look for slow statements)",
                    ACQUIRE_TIMEOUT.as_secs()
                ),
            },
            AcquireError::Connect(e) => e.into_store_error(target, connect_error),
        }
    }
}

/// The store's connections: at most `max`, idle ones reused most recent
/// first, new ones opened on demand. (sqlx's pool was measured to add about
/// 100 us to every statement: it spawns a task and pings the server each
/// time a connection is handed back.)
pub struct Conns<C: Connection + 'static> {
    options: <C as Connection>::Options,
    connect_timeout: Option<Duration>,
    pub max: usize,
    permits: tokio::sync::Semaphore,
    idle: Mutex<Vec<C>>,
    closed: AtomicBool,
}

/// A connection lent out by [`Conns`]. It goes back to the idle list only
/// when marked [`ConnGuard::healthy`] (the statement ran to its end, so the
/// connection is in a known state); otherwise it is closed.
pub struct ConnGuard<'a, C: Connection + 'static> {
    conns: &'a Conns<C>,
    conn: Option<C>,
    healthy: bool,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl<C: Connection + 'static> Conns<C> {
    /// A pool of at most `max` connections, the first one already open.
    pub fn new(
        options: <C as Connection>::Options,
        connect_timeout: Option<Duration>,
        max: usize,
        first: C,
    ) -> Self {
        Conns {
            options,
            connect_timeout,
            max,
            permits: tokio::sync::Semaphore::new(max),
            idle: Mutex::new(vec![first]),
            closed: AtomicBool::new(false),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<C>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub async fn acquire(&self) -> std::result::Result<ConnGuard<'_, C>, AcquireError> {
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
            None => connect(&self.options, self.connect_timeout)
                .await
                .map_err(AcquireError::Connect)?,
        };
        Ok(ConnGuard {
            conns: self,
            conn: Some(conn),
            healthy: false,
            _permit: permit,
        })
    }

    /// Forgets the idle connections (after one turned out broken).
    pub fn discard_idle(&self) {
        let idle = std::mem::take(&mut *self.idle());
        drop(idle);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.permits.close();
        let idle = std::mem::take(&mut *self.idle());
        for conn in idle {
            let _ = conn.close().await;
        }
    }
}

impl<C: Connection + 'static> ConnGuard<'_, C> {
    pub fn conn(&mut self) -> &mut C {
        match self.conn.as_mut() {
            Some(conn) => conn,
            // Only `drop` takes it out.
            None => unreachable!("a lent connection is there until dropped"),
        }
    }

    pub fn healthy(&mut self) {
        self.healthy = true;
    }
}

impl<C: Connection + 'static> Drop for ConnGuard<'_, C> {
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
