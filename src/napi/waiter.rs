//! `Waiter`: waits for the head position of a store's database to move.

use std::sync::Arc;
use std::time::Duration;

use napi_derive::napi;

use super::reply::Reply;
use crate::error::StoreError;
use crate::store::head::HeadWaiter;
use crate::store::input::to_position;

/// Waits for the head position of a store's database to move.
#[napi]
pub struct Waiter {
    inner: Arc<HeadWaiter>,
    engine: &'static str,
}

impl Waiter {
    pub fn new(inner: HeadWaiter, engine: &'static str) -> Self {
        Waiter {
            inner: Arc::new(inner),
            engine,
        }
    }
}

fn timeout_from_ms(ms: f64) -> Result<Option<Duration>, StoreError> {
    if ms.is_nan() || ms < 0.0 {
        return Err(StoreError::invalid_argument(format!(
            "timeoutMs must be a non-negative number of milliseconds (or Infinity), got {ms}"
        )));
    }
    if ms.is_infinite() || ms > 1e12 {
        return Ok(None);
    }
    Ok(Some(Duration::from_secs_f64(ms / 1000.0)))
}

#[napi]
impl Waiter {
    /// Resolves "changed" as soon as the head exceeds `knownHead`
    /// (immediately if it already does), "timeout" after `timeoutMs`
    /// (Infinity: never), or "cancelled" when `cancel()` is called.
    /// After `cancel()`, every wait resolves "cancelled" until `reset()`.
    #[napi(ts_return_type = "Promise<'changed' | 'timeout' | 'cancelled'>")]
    pub async fn wait(&self, known_head: f64, timeout_ms: f64) -> Reply<String> {
        let inner = self.inner.clone();
        let result = async move {
            let known = to_position(known_head, "knownHead")?;
            let timeout = timeout_from_ms(timeout_ms)?;
            Ok(inner.wait(known, timeout).await.as_str().to_string())
        };
        Reply::new(self.engine, result.await)
    }

    /// Makes the pending wait, and every later one until `reset()`, resolve
    /// "cancelled".
    #[napi]
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    /// Clears a `cancel()`.
    #[napi]
    pub fn reset(&self) {
        self.inner.reset();
    }
}
