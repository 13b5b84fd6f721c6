//! Pub/sub against a real daprd (see sidecar.rs for the set-up): CloudEvents,
//! raw and bulk publishing, and delivery to the tests' app with its answers.

#![cfg(target_os = "wasi")]

mod common;

use common::*;

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
fn a_bulk_publish_reaches_a_bulk_subscription_exactly_once() {
    use dapr::pubsub::BulkEntry;
    wstd::runtime::block_on(async {
        let dapr = client();
        let run = unique("bulk");
        let entries: Vec<BulkEntry<serde_json::Value>> = (0..25)
            .map(|i| BulkEntry {
                entry_id: i.to_string(),
                event: serde_json::json!({"id": format!("{run}-{i}")}),
                content_type: "application/json".into(),
            })
            .collect();
        let r = dapr
            .bulk_publish("pubsub", "sdk-bulk", &entries)
            .await
            .expect("bulk publish");
        assert!(r.failed_entries.is_empty(), "{r:?}");
        // The test app's /bulk takes batches of up to 10 and counts each
        // entry in the state store.
        let counts = async || -> Vec<u32> {
            let mut out = Vec::new();
            for i in 0..25 {
                let key = format!("bulk:{run}-{i}");
                out.push(
                    dapr.get_state::<u32>(STORE, &key)
                        .await
                        .expect("state")
                        .unwrap_or(0),
                );
            }
            out
        };
        eventually("every entry delivered", async || {
            counts().await.iter().all(|n| *n >= 1)
        })
        .await;
        assert_eq!(counts().await, vec![1; 25], "each exactly once");
    })
}
