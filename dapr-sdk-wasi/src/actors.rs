//! Actors, both directions.
//!
//! Calling actors: invoke a method, read and write an actor's state in one
//! transaction, register timers and reminders (`/v1.0/actors/...`). Dapr
//! activates an actor on first call, on whichever sidecar placement chose,
//! and runs one call per actor at a time (turn-based), so an actor's
//! read-modify-write needs no ETag.
//!
//! Hosting actors (the app side): answer `GET /dapr/config` with
//! [`config_answer`], and pass each request to [`route`], which recognises
//! Dapr's callbacks (`PUT /actors/{type}/{id}/method/{method}`, its
//! `timer/{name}` and `remind/{name}` forms, `DELETE /actors/{type}/{id}`)
//! as a typed [`ActorCall`].
//!
//! State calls are accepted only from the sidecar hosting the actor, during
//! one of its turns. Reminders are stored by Dapr's scheduler (1.15 and
//! later); without one, registering a reminder is a
//! [`crate::Error::Dapr`] from the sidecar, not a hang.

use crate::request::{DaprRequest, non_empty, path};
use crate::{Error, Result};
use http::Method;
use serde::{Deserialize, Serialize};

fn actor_path(actor_type: &str, actor_id: &str, rest: &[&str]) -> Result<String> {
    non_empty("actor type", actor_type)?;
    non_empty("actor id", actor_id)?;
    let mut segs = vec![actor_type, actor_id];
    segs.extend_from_slice(rest);
    Ok(path("/v1.0/actors", &segs, &[]))
}

/// `PUT /v1.0/actors/{type}/{id}/method/{method}` with `body` (sent as
/// JSON). Never retried on a transport failure: a method may not be
/// idempotent (see [`DaprRequest::is_retryable`]).
pub fn invoke_request(
    actor_type: &str,
    actor_id: &str,
    method: &str,
    body: Vec<u8>,
) -> Result<DaprRequest> {
    non_empty("actor method", method)?;
    let mut r = DaprRequest::new(
        Method::PUT,
        actor_path(actor_type, actor_id, &["method", method])?,
    );
    if !body.is_empty() {
        r = r.header("content-type", "application/json")?;
    }
    r.body = body;
    Ok(r)
}

/// `GET /v1.0/actors/{type}/{id}/state/{key}`.
pub fn get_state_request(actor_type: &str, actor_id: &str, key: &str) -> Result<DaprRequest> {
    non_empty("actor state key", key)?;
    Ok(DaprRequest::new(
        Method::GET,
        actor_path(actor_type, actor_id, &["state", key])?,
    ))
}

/// An actor state read: 204 (or an empty 200) is a missing key.
pub fn decode_state<T: serde::de::DeserializeOwned>(status: u16, body: &[u8]) -> Result<Option<T>> {
    match status {
        204 => Ok(None),
        200 if body.is_empty() => Ok(None),
        200 => serde_json::from_slice(body)
            .map(Some)
            .map_err(Error::Decode),
        _ => Err(Error::from_response(status, body)),
    }
}

/// One operation of an actor state transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum StateOp {
    /// Set `key` to a JSON value.
    Upsert {
        /// The key, within the actor.
        key: String,
        /// Its new value.
        value: serde_json::Value,
    },
    /// Remove `key`.
    Delete {
        /// The key, within the actor.
        key: String,
    },
}

impl StateOp {
    /// Upsert of any serializable value.
    pub fn upsert<T: Serialize + ?Sized>(key: impl Into<String>, value: &T) -> Result<Self> {
        Ok(StateOp::Upsert {
            key: key.into(),
            value: serde_json::to_value(value).map_err(Error::Encode)?,
        })
    }

    /// Delete.
    pub fn delete(key: impl Into<String>) -> Self {
        StateOp::Delete { key: key.into() }
    }

    fn wire(&self) -> serde_json::Value {
        match self {
            StateOp::Upsert { key, value } => serde_json::json!({
                "operation": "upsert", "request": {"key": key, "value": value}
            }),
            StateOp::Delete { key } => serde_json::json!({
                "operation": "delete", "request": {"key": key}
            }),
        }
    }
}

/// `POST /v1.0/actors/{type}/{id}/state`: every operation or none.
pub fn transaction_request(
    actor_type: &str,
    actor_id: &str,
    ops: &[StateOp],
) -> Result<DaprRequest> {
    for op in ops {
        let (StateOp::Upsert { key, .. } | StateOp::Delete { key }) = op;
        non_empty("actor state key", key)?;
    }
    let wire: Vec<serde_json::Value> = ops.iter().map(StateOp::wire).collect();
    DaprRequest::new(Method::POST, actor_path(actor_type, actor_id, &["state"])?).json(&wire)
}

/// A timer: in the hosting sidecar's memory, gone when the actor
/// deactivates. Times are Go durations (`"1s"`, `"500ms"`) or ISO 8601.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timer {
    /// First fire, from now.
    pub due_time: String,
    /// Then every `period`; empty: once.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub period: String,
    /// Stop after this long; empty: never.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ttl: String,
    /// A name the actor's timer callback receives (Dapr passes it through).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub callback: String,
    /// Data the callback receives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

/// A reminder: persisted by Dapr's scheduler, survives deactivation.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reminder {
    /// First fire, from now.
    pub due_time: String,
    /// Then every `period`; empty: once.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub period: String,
    /// Stop after this long; empty: never.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ttl: String,
    /// Data the callback receives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

/// `POST /v1.0/actors/{type}/{id}/timers/{name}`.
pub fn register_timer_request(t: &str, id: &str, name: &str, timer: &Timer) -> Result<DaprRequest> {
    non_empty("timer name", name)?;
    DaprRequest::new(Method::POST, actor_path(t, id, &["timers", name])?).json(timer)
}

/// `DELETE /v1.0/actors/{type}/{id}/timers/{name}`.
pub fn unregister_timer_request(t: &str, id: &str, name: &str) -> Result<DaprRequest> {
    non_empty("timer name", name)?;
    Ok(DaprRequest::new(
        Method::DELETE,
        actor_path(t, id, &["timers", name])?,
    ))
}

/// `POST /v1.0/actors/{type}/{id}/reminders/{name}`.
pub fn register_reminder_request(
    t: &str,
    id: &str,
    name: &str,
    r: &Reminder,
) -> Result<DaprRequest> {
    non_empty("reminder name", name)?;
    DaprRequest::new(Method::POST, actor_path(t, id, &["reminders", name])?).json(r)
}

/// `DELETE /v1.0/actors/{type}/{id}/reminders/{name}`.
pub fn unregister_reminder_request(t: &str, id: &str, name: &str) -> Result<DaprRequest> {
    non_empty("reminder name", name)?;
    Ok(DaprRequest::new(
        Method::DELETE,
        actor_path(t, id, &["reminders", name])?,
    ))
}

// ---- The app side ----

/// The app's `GET /dapr/config` answer: the actor types it hosts, and how
/// Dapr treats them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActorConfig {
    /// The actor types this app hosts.
    pub entities: Vec<String>,
    /// Deactivate an actor after this long without calls (Dapr's default 60m).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_idle_timeout: Option<String>,
    /// How long a rebalanced actor's ongoing call may run (default 60s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_ongoing_call_timeout: Option<String>,
    /// Wait for ongoing calls before moving an actor (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_rebalanced_actors: Option<bool>,
}

impl ActorConfig {
    /// Hosts `types`, with Dapr's defaults.
    pub fn hosting<I: IntoIterator<Item = S>, S: Into<String>>(types: I) -> Self {
        Self {
            entities: types.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }
}

/// The JSON body for `GET /dapr/config`.
pub fn config_answer(c: &ActorConfig) -> Vec<u8> {
    serde_json::to_vec(c).unwrap_or_else(|_| b"{\"entities\":[]}".to_vec())
}

/// One actor instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorId {
    /// Its type.
    pub actor_type: String,
    /// Its id.
    pub id: String,
}

/// A callback from the sidecar to a hosted actor. Dapr sends one at a
/// time per actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActorCall {
    /// A method call; the request body is its data, the answer body goes
    /// back to the caller. Answer 200; anything else is an error for the caller.
    Method {
        /// The actor.
        actor: ActorId,
        /// The method's name.
        method: String,
    },
    /// A timer fired; the body is a [`TimerFire`].
    Timer {
        /// The actor.
        actor: ActorId,
        /// The timer's name.
        name: String,
    },
    /// A reminder fired; the body is a [`ReminderFire`].
    Reminder {
        /// The actor.
        actor: ActorId,
        /// The reminder's name.
        name: String,
    },
    /// Dapr deactivates the actor (idle, or moved to another host).
    Deactivate {
        /// The actor.
        actor: ActorId,
    },
}

/// Recognises Dapr's actor callbacks; `None` for any other request (so
/// the app routes it as usual), and for a malformed actor path.
pub fn route(method: &Method, path: &str) -> Option<ActorCall> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let segs: Vec<String> = path
        .strip_prefix("/actors/")?
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
        })
        .collect::<std::result::Result<_, _>>()
        .ok()?;
    if segs.iter().any(String::is_empty) {
        return None;
    }
    let actor = |t: &str, id: &str| ActorId {
        actor_type: t.to_owned(),
        id: id.to_owned(),
    };
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (method, segs.as_slice()) {
        (&Method::DELETE, [t, id]) => Some(ActorCall::Deactivate {
            actor: actor(t, id),
        }),
        (&Method::PUT, [t, id, "method", "timer", name]) => Some(ActorCall::Timer {
            actor: actor(t, id),
            name: (*name).to_owned(),
        }),
        (&Method::PUT, [t, id, "method", "remind", name]) => Some(ActorCall::Reminder {
            actor: actor(t, id),
            name: (*name).to_owned(),
        }),
        (&Method::PUT, [t, id, "method", m]) => Some(ActorCall::Method {
            actor: actor(t, id),
            method: (*m).to_owned(),
        }),
        _ => None,
    }
}

/// The body of a timer callback.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TimerFire {
    /// The callback name given at registration.
    pub callback: String,
    /// The data given at registration (JSON).
    pub data: serde_json::Value,
    /// As registered.
    pub due_time: String,
    /// As registered.
    pub period: String,
}

/// The body of a reminder callback.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ReminderFire {
    /// The data given at registration (JSON).
    pub data: serde_json::Value,
    /// As registered.
    pub due_time: String,
    /// As registered.
    pub period: String,
}

/// Parses a timer or reminder callback's body.
pub fn parse_fire<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T> {
    if body.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(Error::Decode)
}

#[cfg(target_os = "wasi")]
impl crate::Client {
    /// Calls `method` on an actor with raw JSON `data` and returns its answer.
    pub async fn invoke_actor(
        &self,
        t: &str,
        id: &str,
        method: &str,
        data: Vec<u8>,
    ) -> Result<Vec<u8>> {
        Ok(self
            .send_ok(invoke_request(t, id, method, data)?)
            .await?
            .body)
    }

    /// Calls `method` with a JSON value and decodes a JSON answer.
    pub async fn invoke_actor_json<Req, Resp>(
        &self,
        t: &str,
        id: &str,
        method: &str,
        data: &Req,
    ) -> Result<Resp>
    where
        Req: Serialize + ?Sized,
        Resp: serde::de::DeserializeOwned,
    {
        let body = serde_json::to_vec(data).map_err(Error::Encode)?;
        let out = self.invoke_actor(t, id, method, body).await?;
        serde_json::from_slice(&out).map_err(Error::Decode)
    }

    /// Reads an actor's state key (hosting sidecar, during a turn); missing: `None`.
    pub async fn get_actor_state<T: serde::de::DeserializeOwned>(
        &self,
        t: &str,
        id: &str,
        key: &str,
    ) -> Result<Option<T>> {
        let r = self.send(get_state_request(t, id, key)?).await?;
        decode_state(r.status, &r.body)
    }

    /// Writes an actor's state: every operation or none.
    pub async fn transact_actor_state(&self, t: &str, id: &str, ops: &[StateOp]) -> Result<()> {
        self.send_ok(transaction_request(t, id, ops)?)
            .await
            .map(drop)
    }

    /// Registers (or replaces) a timer.
    pub async fn register_actor_timer(
        &self,
        t: &str,
        id: &str,
        name: &str,
        timer: &Timer,
    ) -> Result<()> {
        self.send_ok(register_timer_request(t, id, name, timer)?)
            .await
            .map(drop)
    }

    /// Removes a timer.
    pub async fn unregister_actor_timer(&self, t: &str, id: &str, name: &str) -> Result<()> {
        self.send_ok(unregister_timer_request(t, id, name)?)
            .await
            .map(drop)
    }

    /// Registers (or replaces) a reminder. Needs Dapr's scheduler.
    pub async fn register_actor_reminder(
        &self,
        t: &str,
        id: &str,
        name: &str,
        r: &Reminder,
    ) -> Result<()> {
        self.send_ok(register_reminder_request(t, id, name, r)?)
            .await
            .map(drop)
    }

    /// Removes a reminder. Needs Dapr's scheduler.
    pub async fn unregister_actor_reminder(&self, t: &str, id: &str, name: &str) -> Result<()> {
        self.send_ok(unregister_reminder_request(t, id, name)?)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn caller_paths() {
        let r = invoke_request("Counter", "a/b", "increment", b"1".to_vec()).expect("req");
        assert_eq!(r.method, Method::PUT);
        assert_eq!(
            r.path_and_query,
            "/v1.0/actors/Counter/a%2Fb/method/increment"
        );
        assert!(!r.is_retryable(), "an actor method may not be idempotent");
        assert!(invoke_request("", "a", "m", vec![]).is_err());
        assert!(invoke_request("T", "", "m", vec![]).is_err());
        let r = get_state_request("T", "1", "count").expect("req");
        assert_eq!(r.path_and_query, "/v1.0/actors/T/1/state/count");
        assert!(r.is_retryable());
        let r = register_timer_request(
            "T",
            "1",
            "tick",
            &Timer {
                due_time: "1s".into(),
                period: "1s".into(),
                data: Some(json!({"n": 1})),
                ..Timer::default()
            },
        )
        .expect("req");
        assert_eq!(r.path_and_query, "/v1.0/actors/T/1/timers/tick");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&r.body).expect("json"),
            json!({"dueTime": "1s", "period": "1s", "data": {"n": 1}})
        );
        let r = register_reminder_request("T", "1", "r", &Reminder::default()).expect("req");
        assert_eq!(r.path_and_query, "/v1.0/actors/T/1/reminders/r");
        assert!(unregister_timer_request("T", "1", "").is_err());
    }

    #[test]
    fn transactions_and_reads() {
        let ops = [
            StateOp::upsert("count", &3).expect("op"),
            StateOp::delete("old"),
        ];
        let r = transaction_request("T", "1", &ops).expect("req");
        assert_eq!(r.path_and_query, "/v1.0/actors/T/1/state");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&r.body).expect("json"),
            json!([
                {"operation": "upsert", "request": {"key": "count", "value": 3}},
                {"operation": "delete", "request": {"key": "old"}}
            ])
        );
        assert!(transaction_request("T", "1", &[StateOp::delete("")]).is_err());
        assert_eq!(decode_state::<u32>(204, b"").expect("ok"), None);
        assert_eq!(decode_state::<u32>(200, b"7").expect("ok"), Some(7));
        let e = decode_state::<u32>(
            500,
            br#"{"errorCode":"ERR_ACTOR_INSTANCE_MISSING","message":"x"}"#,
        )
        .expect_err("error");
        assert_eq!(e.error_code(), Some("ERR_ACTOR_INSTANCE_MISSING"));
    }

    #[test]
    fn app_side_routing() {
        let a = |t: &str, id: &str| ActorId {
            actor_type: t.into(),
            id: id.into(),
        };
        assert_eq!(
            route(&Method::PUT, "/actors/Counter/k%201/method/increment"),
            Some(ActorCall::Method {
                actor: a("Counter", "k 1"),
                method: "increment".into()
            })
        );
        assert_eq!(
            route(&Method::PUT, "/actors/Counter/k/method/timer/tick"),
            Some(ActorCall::Timer {
                actor: a("Counter", "k"),
                name: "tick".into()
            })
        );
        assert_eq!(
            route(&Method::PUT, "/actors/Counter/k/method/remind/r"),
            Some(ActorCall::Reminder {
                actor: a("Counter", "k"),
                name: "r".into()
            })
        );
        assert_eq!(
            route(&Method::DELETE, "/actors/Counter/k"),
            Some(ActorCall::Deactivate {
                actor: a("Counter", "k")
            })
        );
        for (m, p) in [
            (Method::GET, "/actors/Counter/k/method/x"),
            (Method::PUT, "/actors/Counter//method/x"),
            (Method::PUT, "/actors/Counter/k/other/x"),
            (Method::PUT, "/dapr/config"),
            (Method::PUT, "/actors/Counter/%FF/method/x"),
        ] {
            assert_eq!(route(&m, p), None, "{m} {p}");
        }
        let c = ActorConfig {
            actor_idle_timeout: Some("5s".into()),
            ..ActorConfig::hosting(["Counter"])
        };
        assert_eq!(
            config_answer(&c),
            br#"{"entities":["Counter"],"actorIdleTimeout":"5s"}"#
        );
        let f: TimerFire =
            parse_fire(br#"{"callback":"cb","data":{"n":2},"dueTime":"1s","period":"1s"}"#)
                .expect("fire");
        assert_eq!((f.callback.as_str(), f.data["n"].as_i64()), ("cb", Some(2)));
        assert_eq!(
            parse_fire::<ReminderFire>(b"").expect("empty"),
            ReminderFire::default()
        );
        assert!(parse_fire::<TimerFire>(b"[").is_err());
    }
}
