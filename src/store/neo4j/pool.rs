//! A small pool of Bolt connections: at most `max` open, idle ones reused,
//! broken ones dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::bolt::{BoltError, Connection, Login};

/// How long a statement may wait for a free connection.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long opening a connection (TCP, handshake, HELLO) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why no connection could be had.
#[derive(Debug)]
pub enum AcquireError {
    Closed,
    TimedOut,
    Connect(BoltError),
}

pub struct Pool {
    pub address: String,
    login: Login,
    pub max: usize,
    idle: Mutex<Vec<Connection>>,
    slots: Arc<Semaphore>,
    closed: AtomicBool,
}

/// A connection lent by the pool; it goes back when dropped (unless broken).
pub struct Lease<'a> {
    pool: &'a Pool,
    conn: Option<Connection>,
    _slot: OwnedSemaphorePermit,
    /// The connection had been used before (it may have gone stale while
    /// idle, e.g. the server restarted).
    pub reused: bool,
}

impl std::ops::Deref for Lease<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        match &self.conn {
            Some(conn) => conn,
            None => unreachable!("a lease holds its connection until dropped"),
        }
    }
}

impl std::ops::DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        match &mut self.conn {
            Some(conn) => conn,
            None => unreachable!("a lease holds its connection until dropped"),
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if !conn.broken && !self.pool.closed.load(Ordering::SeqCst) {
                self.pool
                    .idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(conn);
            }
        }
    }
}

impl Pool {
    pub fn new(address: String, login: Login, max: usize) -> Pool {
        Pool {
            address,
            login,
            max,
            idle: Mutex::new(Vec::new()),
            slots: Arc::new(Semaphore::new(max)),
            closed: AtomicBool::new(false),
        }
    }

    pub async fn get(&self) -> Result<Lease<'_>, AcquireError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(AcquireError::Closed);
        }
        let slot = tokio::time::timeout(ACQUIRE_TIMEOUT, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| AcquireError::TimedOut)?
            .map_err(|_| AcquireError::Closed)?;
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let reused = idle.is_some();
        let conn = match idle {
            Some(conn) => conn,
            None => Connection::open(&self.address, &self.login, CONNECT_TIMEOUT)
                .await
                .map_err(AcquireError::Connect)?,
        };
        Ok(Lease {
            pool: self,
            conn: Some(conn),
            _slot: slot,
            reused,
        })
    }

    /// Closes the idle connections; leased ones close when given back.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.slots.close();
        let idle: Vec<Connection> =
            std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        for conn in idle {
            conn.close().await;
        }
    }
}
