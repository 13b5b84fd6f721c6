//! Actors against real daprd and placement: the test binary calls actor type
//! `Counter` through its sidecar (sdk-test, 3510); placement (started by the
//! supervisor from tests/dapr.yaml, under mTLS) puts the actors on the
//! other sidecar, sdk-actors, whose app is examples/actor-counter.rs under
//! wasm-host. Covered: turn-based access (concurrent increments of one id
//! lose nothing, with no ETag anywhere), independent ids, a timer, the
//! deactivation callback after idle, and the errors of an unknown type or
//! method, of actor state outside a turn, and of reminders (which need
//! Dapr's scheduler, not built here).

#![cfg(target_os = "wasi")]

mod common;

use common::*;
use dapr::actors::Reminder;
use http::{HeaderMap, Method};

const COUNTER: &str = "Counter";

async fn count(id: &str, method: &str) -> u64 {
    client()
        .invoke_actor_json(COUNTER, id, method, &())
        .await
        .unwrap_or_else(|e| panic!("{method} on {id}: {e}"))
}

#[test]
fn concurrent_increments_of_one_actor_lose_no_update() {
    wstd::runtime::block_on(async {
        let id = unique("one");
        let callers: Vec<_> = (0..6)
            .map(|_| {
                let id = id.clone();
                wstd::runtime::spawn(async move {
                    let dapr = client();
                    let mut seen = Vec::new();
                    for _ in 0..10 {
                        let n: u64 = dapr
                            .invoke_actor_json(COUNTER, &id, "increment", &1)
                            .await
                            .expect("increment");
                        seen.push(n);
                    }
                    seen
                })
            })
            .collect();
        let mut answers = Vec::new();
        for c in callers {
            answers.extend(c.await);
        }
        answers.sort_unstable();
        // One turn at a time: every answer a distinct step of the count.
        assert_eq!(answers, (1..=60).collect::<Vec<u64>>());
        assert_eq!(count(&id, "get").await, 60);
    })
}

#[test]
fn two_actor_ids_count_independently() {
    wstd::runtime::block_on(async {
        let (a, b) = (unique("a"), unique("b"));
        let dapr = client();
        let _: u64 = dapr
            .invoke_actor_json(COUNTER, &a, "increment", &3)
            .await
            .expect("a");
        let _: u64 = dapr
            .invoke_actor_json(COUNTER, &b, "increment", &5)
            .await
            .expect("b");
        let _: u64 = dapr
            .invoke_actor_json(COUNTER, &a, "increment", &4)
            .await
            .expect("a");
        assert_eq!((count(&a, "get").await, count(&b, "get").await), (7, 5));
    })
}

#[test]
fn a_timer_fires_until_it_is_removed() {
    wstd::runtime::block_on(async {
        let id = unique("ticking");
        assert_eq!(count(&id, "ticks").await, 0);
        let _: serde_json::Value = client()
            .invoke_actor_json(COUNTER, &id, "start-ticking", &())
            .await
            .expect("start");
        eventually("the timer fired 3 times", async || {
            count(&id, "ticks").await >= 3
        })
        .await;
        let _: serde_json::Value = client()
            .invoke_actor_json(COUNTER, &id, "stop-ticking", &())
            .await
            .expect("stop");
    })
}

#[test]
fn an_idle_actor_is_deactivated_and_keeps_its_state() {
    wstd::runtime::block_on(async {
        let id = unique("idle");
        let _: u64 = client()
            .invoke_actor_json(COUNTER, &id, "increment", &2)
            .await
            .expect("increment");
        // ACTOR_IDLE_TIMEOUT is 3 s in tests/dapr.yaml.
        eventually("the deactivation callback", async || {
            let r = client()
                .invoke(
                    "sdk-actors",
                    Method::GET,
                    &format!("deactivations/{id}"),
                    HeaderMap::new(),
                    vec![],
                )
                .await
                .expect("invoke");
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            r.body != b"0"
        })
        .await;
        // Activated again, from the state store.
        assert_eq!(count(&id, "get").await, 2);
    })
}

#[test]
fn an_unknown_actor_type_or_method_is_a_clear_error() {
    wstd::runtime::block_on(async {
        let dapr = client();
        let err = dapr
            .invoke_actor(COUNTER, &unique("m"), "no-such-method", vec![])
            .await
            .expect_err("unknown method");
        assert!(err.to_string().contains("no-such-method"), "{err}");
        let err = dapr
            .invoke_actor("NoSuchType", "1", "get", vec![])
            .await
            .expect_err("unknown type");
        assert!(err.status().is_some(), "a Dapr error, not a hang: {err}");
        assert!(err.to_string().contains("NoSuchType"), "{err}");
    })
}

#[test]
fn actor_state_is_refused_outside_the_actors_turn() {
    wstd::runtime::block_on(async {
        let id = unique("outside");
        let _: u64 = client()
            .invoke_actor_json(COUNTER, &id, "increment", &1)
            .await
            .expect("increment");
        // This sidecar does not host the actor: Dapr refuses, rather than
        // letting a second writer around the actor's turns.
        let err = client()
            .get_actor_state::<u64>(COUNTER, &id, "count")
            .await
            .expect_err("not this sidecar's actor");
        assert!(err.status().is_some(), "{err}");
    })
}

#[test]
fn reminders_report_that_the_scheduler_is_missing() {
    wstd::runtime::block_on(async {
        // From the hosting sidecar (the example registers it in a turn):
        // daprd 1.18 keeps reminders in its scheduler, which is not built here.
        let err = client()
            .invoke_actor(COUNTER, &unique("r"), "remind-me", vec![])
            .await
            .expect_err("no scheduler here");
        assert!(err.to_string().contains("scheduler"), "{err}");
        // From a sidecar that does not host the type: refused by name.
        let r = Reminder {
            due_time: "1s".into(),
            ..Reminder::default()
        };
        let err = client()
            .register_actor_reminder(COUNTER, &unique("r"), "wake", &r)
            .await
            .expect_err("not hosted here");
        assert_eq!(
            err.error_code(),
            Some("ERR_ACTOR_REMINDER_NON_HOSTED"),
            "{err}"
        );
    })
}
