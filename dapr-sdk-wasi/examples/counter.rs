//! A wasi:http component that counts its requests in the Dapr state store,
//! safely under concurrency (ETag compare-and-swap).
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2 -p dapr-sdk-wasi --example counter
//! dapr run --app-id counter --app-port 9100 --dapr-http-port 3600 --resources-path config/components -- \
//!   wasmtime serve --addr=127.0.0.1:9100 -S cli --env=DAPR_HTTP_PORT target/wasm32-wasip2/release/examples/counter.wasm
//! curl localhost:9100/
//! ```

#[cfg(target_os = "wasi")]
#[wstd::http_server]
async fn main(
    _req: wstd::http::Request<wstd::http::Body>,
) -> Result<wstd::http::Response<wstd::http::Body>, wstd::http::Error> {
    use dapr::{SaveItem, StateOptions};
    let dapr = dapr::Client::from_env()?;
    loop {
        let entry = dapr
            .get_state_entry::<u64>("statestore", "hits", None)
            .await?;
        let (n, etag) = entry.map(|e| (e.value, e.etag)).unwrap_or((0, None));
        let item = SaveItem::new("hits", n + 1)
            .etag(etag)
            .options(StateOptions::first_write());
        match dapr.save_state("statestore", &[item]).await {
            Ok(()) => {
                return Ok(wstd::http::Response::new(
                    format!("hit number {}\n", n + 1).into(),
                ));
            }
            Err(e) if e.is_etag_mismatch() => continue, // someone else won: read again
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(not(target_os = "wasi"))]
fn main() {}
