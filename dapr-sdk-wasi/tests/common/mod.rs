//! What every SDK integration test binary shares: the sidecar's address,
//! a client with the test token, unique keys, and polling.
// Each test binary uses only some of these.
#![allow(dead_code)]

use dapr::Client;
use std::time::Duration;

pub const STORE: &str = "statestore";

pub const ENDPOINT: &str = "http://127.0.0.1:3510";

pub fn client() -> Client {
    let token = std::env::var("DAPR_API_TOKEN").expect("DAPR_API_TOKEN (see scripts/test)");
    Client::builder()
        .endpoint(option_env!("SDK_TEST_DAPR_ENDPOINT").unwrap_or(ENDPOINT))
        .api_token(token)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

pub fn unique(prefix: &str) -> String {
    let mut b = [0u8; 8];
    wstd::rand::get_random_bytes(&mut b);
    format!("{prefix}-{:016x}", u64::from_le_bytes(b))
}

/// Polls `check` every 200 ms for up to 30 s.
pub async fn eventually<F: AsyncFnMut() -> bool>(what: &str, mut check: F) {
    for _ in 0..150 {
        if check().await {
            return;
        }
        wstd::task::sleep(Duration::from_millis(200).into()).await;
    }
    panic!("not within 30 s: {what}");
}
