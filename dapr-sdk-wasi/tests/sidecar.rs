//! Integration tests of the public API against a real daprd (app id
//! `sdk-test`, HTTP port 3510, started by scripts/test with the components
//! in tests/components). They run as a wasm32-wasip2 test binary under
//! `wasmtime run -S http` (the runner in .cargo/config.toml).
#![cfg(target_os = "wasi")]

use dapr::{Client, SaveItem, StateOptions};
use http::{HeaderMap, Method};
use serde::{Deserialize, Serialize};
use std::time::Duration;

const STORE: &str = "statestore";

fn client() -> Client {
    let endpoint = option_env!("SDK_TEST_DAPR_ENDPOINT").unwrap_or("http://127.0.0.1:3510");
    Client::builder()
        .endpoint(endpoint)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

fn unique(prefix: &str) -> String {
    let mut b = [0u8; 8];
    wstd::rand::get_random_bytes(&mut b);
    format!("{prefix}-{:016x}", u64::from_le_bytes(b))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Counter {
    name: String,
    n: u32,
}

#[test]
fn health_and_readiness() {
    wstd::runtime::block_on(async {
        let dapr = client();
        dapr.wait_until_ready(Duration::from_secs(10))
            .await
            .expect("ready");
        dapr.healthz().await.expect("healthz");
        let down = Client::builder()
            .endpoint("http://127.0.0.1:1")
            .build()
            .expect("client");
        let e = down
            .wait_until_ready(Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(e.is_transport(), "{e}");
    })
}

#[test]
fn state_round_trip_with_etags() {
    wstd::runtime::block_on(async {
        let dapr = client();
        let key = unique("counter");
        // A missing key is Ok(None), not an error.
        assert_eq!(
            dapr.get_state::<Counter>(STORE, &key).await.expect("get"),
            None
        );

        let v1 = Counter {
            name: "a".into(),
            n: 1,
        };
        let insert = SaveItem::new(key.as_str(), &v1).options(StateOptions::first_write());
        dapr.save_state(STORE, std::slice::from_ref(&insert))
            .await
            .expect("first-write insert");
        // First-write without an ETag only inserts: a second insert loses.
        let e = dapr.save_state(STORE, &[insert]).await.unwrap_err();
        assert!(e.is_etag_mismatch(), "{e}");

        let entry = dapr
            .get_state_entry::<Counter>(STORE, &key, None)
            .await
            .expect("get")
            .expect("some");
        assert_eq!(entry.value, v1);
        let etag = entry.etag.expect("sqlite has ETags");

        let v2 = Counter {
            name: "a".into(),
            n: 2,
        };
        let update = SaveItem::new(key.as_str(), &v2)
            .etag(Some(etag.clone()))
            .options(StateOptions::first_write());
        dapr.save_state(STORE, &[update])
            .await
            .expect("update with current ETag");
        // The old ETag is stale now.
        let stale = SaveItem::new(key.as_str(), &v1)
            .etag(Some(etag.clone()))
            .options(StateOptions::first_write());
        assert!(
            dapr.save_state(STORE, &[stale])
                .await
                .unwrap_err()
                .is_etag_mismatch()
        );
        assert_eq!(
            dapr.get_state::<Counter>(STORE, &key).await.expect("get"),
            Some(v2)
        );

        // Delete with a wrong ETag fails; with the right one succeeds.
        let wrong = dapr
            .delete_state(STORE, &key, Some(&etag), StateOptions::first_write())
            .await;
        assert!(wrong.is_err());
        let current = dapr
            .get_state_entry::<Counter>(STORE, &key, None)
            .await
            .expect("get")
            .expect("some");
        dapr.delete_state(
            STORE,
            &key,
            current.etag.as_ref(),
            StateOptions::first_write(),
        )
        .await
        .expect("delete");
        assert_eq!(
            dapr.get_state::<Counter>(STORE, &key).await.expect("get"),
            None
        );
    })
}

#[test]
fn keys_are_encoded_and_bulk_get_keeps_order() {
    wstd::runtime::block_on(async {
        let dapr = client();
        let odd = format!("{}/with ?odd&chars#", unique("k"));
        let plain = unique("k");
        let missing = unique("missing");
        dapr.save(STORE, &odd, "odd").await.expect("save odd");
        dapr.save(STORE, &plain, "plain").await.expect("save plain");
        assert_eq!(
            dapr.get_state::<String>(STORE, &odd).await.expect("get"),
            Some("odd".into())
        );
        let got = dapr
            .get_bulk_state::<String>(STORE, &[plain.as_str(), missing.as_str(), odd.as_str()])
            .await
            .expect("bulk");
        let values: Vec<Option<String>> =
            got.into_iter().map(|(_, e)| e.map(|e| e.value)).collect();
        assert_eq!(values, vec![Some("plain".into()), None, Some("odd".into())]);
    })
}

#[test]
fn ttl_expires_values() {
    wstd::runtime::block_on(async {
        let dapr = client();
        let key = unique("ttl");
        dapr.save_state(STORE, &[SaveItem::new(key.as_str(), 7).ttl_seconds(1)])
            .await
            .expect("save");
        assert_eq!(
            dapr.get_state::<u32>(STORE, &key).await.expect("get"),
            Some(7)
        );
        wstd::task::sleep(Duration::from_millis(2500).into()).await;
        assert_eq!(dapr.get_state::<u32>(STORE, &key).await.expect("get"), None);
    })
}

#[test]
fn typed_errors_carry_dapr_error_codes() {
    wstd::runtime::block_on(async {
        let dapr = client();
        let e = dapr
            .get_state::<u32>("no-such-store", "k")
            .await
            .unwrap_err();
        assert_eq!(e.error_code(), Some("ERR_STATE_STORE_NOT_FOUND"), "{e}");
        assert_eq!(e.status(), Some(400));
        let e = dapr.save_state::<u32>(STORE, &[]).await.unwrap_err();
        assert!(matches!(e, dapr::Error::InvalidArgument(_)));
        let e = dapr.get_state::<u32>(STORE, "").await.unwrap_err();
        assert!(matches!(e, dapr::Error::InvalidArgument(_)));
        // A value that is not the type asked for is a decode error.
        let key = unique("typed");
        dapr.save(STORE, &key, "text").await.expect("save");
        assert!(matches!(
            dapr.get_state::<u32>(STORE, &key).await,
            Err(dapr::Error::Decode(_))
        ));
    })
}

#[test]
fn secrets_are_read_and_never_debug_printed() {
    wstd::runtime::block_on(async {
        let dapr = client();
        let s = dapr
            .get_secret("secretstore", "greeting")
            .await
            .expect("secret");
        assert_eq!(s.get("greeting"), Some("not-a-real-secret-1234"));
        assert!(!format!("{s:?}").contains("not-a-real-secret"));
        let e = dapr
            .get_secret("secretstore", "no-such-secret")
            .await
            .unwrap_err();
        assert!(
            e.error_code().is_some_and(|c| c.starts_with("ERR_SECRET")),
            "{e}"
        );
    })
}

#[test]
fn service_invocation_passes_status_through() {
    wstd::runtime::block_on(async {
        let dapr = client();
        // The stack's grayscale service, found through the sqlite name resolver.
        let r = dapr
            .invoke(
                "image-api-grayscale",
                Method::GET,
                "healthz",
                HeaderMap::new(),
                Vec::new(),
            )
            .await
            .expect("invoke");
        assert_eq!(r.status, 200);
        let v: serde_json::Value = r.json().expect("json");
        assert_eq!(v["status"], "ok");
        // The app's own 4xx is a response, not an error.
        let r = dapr
            .invoke(
                "image-api-grayscale",
                Method::POST,
                "grayscale",
                HeaderMap::new(),
                b"not an image".to_vec(),
            )
            .await
            .expect("invoke");
        assert_eq!(r.status, 415);
        assert!(!r.is_sidecar_error());
        // An unknown app: the sidecar's own error.
        let r = dapr
            .invoke(
                "no-such-app",
                Method::GET,
                "x",
                HeaderMap::new(),
                Vec::new(),
            )
            .await;
        match r {
            Ok(r) => assert!(r.is_sidecar_error(), "{}", r.status),
            Err(e) => assert!(e.status().is_some(), "{e}"),
        }
    })
}
