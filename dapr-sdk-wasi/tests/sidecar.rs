//! Integration tests of the public API against a real daprd (app id
//! `sdk-test`, HTTP port 3510, started by scripts/test from
//! tests/dapr.yaml with the components in tests/components, Redis on 6380
//! for lock and configuration, and the tests' own app on 3514
//! (examples/test-app.rs: it answers invocations and gives configuration
//! subscriptions an app channel). Nothing here depends on the main stack or
//! any service. They run as a wasm32-wasip2 test binary under `wasm-host run`
//! (the runner in .cargo/config.toml; tests/host.toml grants the sidecar and
//! DAPR_API_TOKEN, which the sidecar requires).
#![cfg(target_os = "wasi")]

use dapr::{Client, SaveItem, StateOptions};
use http::{HeaderMap, Method};
use serde::{Deserialize, Serialize};
use std::time::Duration;

const STORE: &str = "statestore";

const ENDPOINT: &str = "http://127.0.0.1:3510";

fn client() -> Client {
    let token = std::env::var("DAPR_API_TOKEN").expect("DAPR_API_TOKEN (see scripts/test)");
    Client::builder()
        .endpoint(option_env!("SDK_TEST_DAPR_ENDPOINT").unwrap_or(ENDPOINT))
        .api_token(token)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

#[test]
fn without_the_right_api_token_the_sidecar_answers_401() {
    wstd::runtime::block_on(async {
        // (The builder would take DAPR_API_TOKEN from the environment.)
        let anonymous = Client::builder()
            .endpoint(option_env!("SDK_TEST_DAPR_ENDPOINT").unwrap_or(ENDPOINT))
            .api_token("not-the-token")
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let err = anonymous
            .get_state::<String>(STORE, "any")
            .await
            .expect_err("refused");
        assert_eq!(err.status(), Some(401), "{err}");
        // Health stays open, as Dapr documents.
        anonymous.healthz().await.expect("healthz needs no token");
    })
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
            .await
            .expect_err("a stale ETag");
        assert!(wrong.is_etag_mismatch(), "{wrong}");
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
        // Polled, not slept: gone once the store's TTL passes.
        eventually("the value to expire", async || {
            dapr.get_state::<u32>(STORE, &key)
                .await
                .expect("get")
                .is_none()
        })
        .await;
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
        // Its own app (the stand-in), found through the sqlite name resolver.
        let r = dapr
            .invoke(
                "sdk-test",
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
                "sdk-test",
                Method::POST,
                "no-such-route",
                HeaderMap::new(),
                b"anything".to_vec(),
            )
            .await
            .expect("invoke");
        assert_eq!(r.status, 404);
        assert!(!r.is_sidecar_error());
        // Bodies go through unchanged, both ways.
        let r = dapr
            .invoke(
                "sdk-test",
                Method::POST,
                "echo",
                HeaderMap::new(),
                b"\x00binary\xffbody".to_vec(),
            )
            .await
            .expect("invoke");
        assert_eq!((r.status, &r.body[..]), (200, &b"\x00binary\xffbody"[..]));
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

#[test]
fn metadata_and_outbound_health() {
    wstd::runtime::block_on(async {
        let dapr = client();
        dapr.healthz_outbound().await.expect("outbound");
        dapr.set_metadata("sdk-test-attr", "42").await.expect("put");
        let m = dapr.metadata().await.expect("metadata");
        assert_eq!(m.id, "sdk-test");
        assert!(
            m.components
                .iter()
                .any(|c| c.name == STORE && c.ty == "state.sqlite"),
            "{m:?}"
        );
        assert_eq!(
            m.extended.get("sdk-test-attr").map(String::as_str),
            Some("42")
        );
    })
}

#[test]
fn bulk_secrets() {
    wstd::runtime::block_on(async {
        let all = client()
            .get_bulk_secrets("secretstore")
            .await
            .expect("bulk");
        assert_eq!(
            all.get("greeting").and_then(|s| s.get("greeting")),
            Some("not-a-real-secret-1234")
        );
    })
}

#[test]
fn transactions_are_all_or_nothing() {
    use dapr::state::TransactionOp;
    wstd::runtime::block_on(async {
        let dapr = client();
        let (a, b, c) = (unique("tx-a"), unique("tx-b"), unique("tx-c"));
        dapr.save(STORE, &c, 3).await.expect("save c");
        let ops = vec![
            TransactionOp::Upsert(SaveItem::new(a.as_str(), 1)),
            TransactionOp::Upsert(SaveItem::new(b.as_str(), 2)),
            TransactionOp::Delete {
                key: c.clone(),
                etag: None,
            },
        ];
        dapr.transact_state(STORE, &ops).await.expect("transaction");
        assert_eq!(dapr.get_state::<u32>(STORE, &a).await.expect("a"), Some(1));
        assert_eq!(dapr.get_state::<u32>(STORE, &b).await.expect("b"), Some(2));
        assert_eq!(dapr.get_state::<u32>(STORE, &c).await.expect("c"), None);
        // A stale ETag fails the whole transaction: a keeps its value.
        let ops = vec![
            TransactionOp::Upsert(SaveItem::new(a.as_str(), 10)),
            TransactionOp::Upsert(
                SaveItem::new(b.as_str(), 20)
                    .etag(Some(dapr::ETag("stale".into())))
                    .options(StateOptions::first_write()),
            ),
        ];
        assert!(dapr.transact_state(STORE, &ops).await.is_err());
        assert_eq!(dapr.get_state::<u32>(STORE, &a).await.expect("a"), Some(1));
        // SQLite has no query support: a typed Dapr error, not a panic.
        let e = dapr
            .query_state::<u32>(STORE, &serde_json::json!({"filter": {"EQ": {"x": 1}}}))
            .await
            .unwrap_err();
        assert!(e.error_code().is_some_and(|c| c.starts_with("ERR_")), "{e}");
    })
}

#[test]
fn publish_cloud_event_raw_and_bulk() {
    use dapr::pubsub::{BulkEntry, Payload};
    wstd::runtime::block_on(async {
        let dapr = client();
        dapr.publish_json("pubsub", "orders", &serde_json::json!({"id": 1}))
            .await
            .expect("cloudevent");
        dapr.publish(
            "pubsub",
            "orders",
            b"raw bytes".to_vec(),
            "text/plain",
            Payload::Raw,
        )
        .await
        .expect("raw");
        let entries: Vec<BulkEntry<serde_json::Value>> = (0..3)
            .map(|i| BulkEntry {
                entry_id: i.to_string(),
                event: serde_json::json!({"n": i}),
                content_type: "application/json".into(),
            })
            .collect();
        let r = dapr
            .bulk_publish("pubsub", "orders", &entries)
            .await
            .expect("bulk");
        assert!(r.failed_entries.is_empty(), "{r:?}");
        let e = dapr
            .publish_json("no-such-pubsub", "t", &1)
            .await
            .unwrap_err();
        assert_eq!(e.error_code(), Some("ERR_PUBSUB_NOT_FOUND"), "{e}");
    })
}

/// Polls `check` every 200 ms for up to 30 s.
async fn eventually<F: AsyncFnMut() -> bool>(what: &str, mut check: F) {
    for _ in 0..150 {
        if check().await {
            return;
        }
        wstd::task::sleep(Duration::from_millis(200).into()).await;
    }
    panic!("not within 30 s: {what}");
}

#[test]
fn published_messages_reach_the_app_which_answers_success_retry_or_drop() {
    wstd::runtime::block_on(async {
        let dapr = client();
        let run = unique("m");
        for reply in ["SUCCESS", "RETRY", "DROP"] {
            dapr.publish_json(
                "pubsub",
                "sdk-orders",
                &serde_json::json!({"id": format!("{run}-{reply}"), "reply": reply}),
            )
            .await
            .expect("publish");
        }
        // The test app counts each delivery in the state store.
        let count = async |key: String| -> u32 {
            dapr.get_state::<u32>(STORE, &key)
                .await
                .expect("state")
                .unwrap_or(0)
        };
        eventually(
            "SUCCESS once, RETRY then delivered again, DROP dead-lettered",
            async || {
                count(format!("orders:{run}-SUCCESS")).await == 1
                    && count(format!("orders:{run}-RETRY")).await == 2
                    && count(format!("orders:{run}-DROP")).await == 1
                    && count(format!("dead:{run}-DROP")).await == 1
            },
        )
        .await;
        // Nothing else was dead-lettered, or delivered again.
        assert_eq!(count(format!("dead:{run}-SUCCESS")).await, 0);
        assert_eq!(count(format!("dead:{run}-RETRY")).await, 0);
        assert_eq!(count(format!("orders:{run}-SUCCESS")).await, 1);
    })
}

#[test]
fn configuration_updates_reach_the_subscribed_app() {
    use std::collections::BTreeMap;
    wstd::runtime::block_on(async {
        let dapr = client();
        let id = dapr
            .subscribe_configuration("configstore", &["motd"])
            .await
            .expect("subscribe");
        // Change the item in Redis (the binding stores the data as JSON).
        let value = unique("v");
        let md = BTreeMap::from([("key".to_string(), "motd".to_string())]);
        let seen = async || -> Option<String> {
            dapr.get_state::<String>(STORE, "config-update:motd")
                .await
                .expect("state")
        };
        // The subscription starts asynchronously: write until one arrives.
        eventually("the update at the app's /configuration route", async || {
            dapr.invoke_binding("configwriter", "create", &format!("{value}||2"), &md)
                .await
                .expect("set");
            seen().await.is_some_and(|v| v.contains(&value))
        })
        .await;
        dapr.unsubscribe_configuration("configstore", &id)
            .await
            .expect("unsubscribe");
    })
}

#[test]
fn output_binding_writes_and_reads_a_file() {
    use std::collections::BTreeMap;
    wstd::runtime::block_on(async {
        let dapr = client();
        let name = format!("{}.txt", unique("f"));
        let md = BTreeMap::from([("fileName".to_string(), name.clone())]);
        dapr.invoke_binding("files", "create", &"hello binding", &md)
            .await
            .expect("create");
        let got = dapr
            .invoke_binding("files", "get", &(), &md)
            .await
            .expect("get");
        assert_eq!(got.data, b"hello binding");
        dapr.invoke_binding("files", "delete", &(), &md)
            .await
            .expect("delete");
        assert!(
            dapr.invoke_binding("no-such-binding", "create", &1, &md)
                .await
                .is_err()
        );
    })
}

#[test]
fn configuration_get_subscribe_unsubscribe() {
    wstd::runtime::block_on(async {
        let dapr = client();
        // scripts/test seeds `greeting` = "hello" (version 1) in Redis.
        let items = dapr
            .get_configuration("configstore", &["greeting"])
            .await
            .expect("get");
        assert_eq!(
            items.get("greeting").map(|i| i.value.as_str()),
            Some("hello")
        );
        assert_eq!(items.get("greeting").map(|i| i.version.as_str()), Some("1"));
        let id = dapr
            .subscribe_configuration("configstore", &["greeting"])
            .await
            .expect("subscribe");
        assert!(!id.is_empty());
        dapr.unsubscribe_configuration("configstore", &id)
            .await
            .expect("unsubscribe");
    })
}

#[test]
fn lock_and_unlock_with_their_result_codes() {
    use dapr::lock::UnlockStatus;
    wstd::runtime::block_on(async {
        let dapr = client();
        let res = unique("res");
        assert!(
            dapr.try_lock("lockstore", &res, "owner-a", 30)
                .await
                .expect("lock a")
        );
        assert!(
            !dapr
                .try_lock("lockstore", &res, "owner-b", 30)
                .await
                .expect("lock b")
        );
        assert_eq!(
            dapr.unlock("lockstore", &res, "owner-b")
                .await
                .expect("unlock b"),
            UnlockStatus::LockBelongsToOthers
        );
        assert_eq!(
            dapr.unlock("lockstore", &res, "owner-a")
                .await
                .expect("unlock a"),
            UnlockStatus::Success
        );
        assert_eq!(
            dapr.unlock("lockstore", &res, "owner-a")
                .await
                .expect("again"),
            UnlockStatus::LockDoesNotExist
        );
    })
}

// It stops the sidecar, so it is ignored in the main run and scripts/test
// runs it on its own afterwards (`-- --ignored`): no reliance on test order.
#[test]
#[ignore = "stops the sidecar: run alone, after the others"]
fn shutdown_stops_the_sidecar() {
    wstd::runtime::block_on(async {
        let dapr = client();
        dapr.shutdown().await.expect("shutdown");
        let start = wstd::time::Instant::now();
        while dapr.healthz().await.is_ok() {
            assert!(
                start.elapsed() < Duration::from_secs(15).into(),
                "sidecar still up"
            );
            wstd::task::sleep(Duration::from_millis(200).into()).await;
        }
    })
}
