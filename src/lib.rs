use napi_derive::napi;

#[napi]
pub fn ping() -> String {
    "pong".to_string()
}

#[napi]
pub async fn ping_async(ms: u32) -> napi::Result<u32> {
    tokio::time::sleep(std::time::Duration::from_millis(ms as u64)).await;
    Ok(ms)
}
