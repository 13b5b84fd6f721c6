//! The state API against a real daprd (see sidecar.rs for the set-up):
//! ETags, key encoding, bulk get, TTL, typed errors, transactions.

#![cfg(target_os = "wasi")]

mod common;

use common::*;
use dapr::{SaveItem, StateOptions};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Counter {
    name: String,
    n: u32,
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
