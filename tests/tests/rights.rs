//! Each service's manifest (service.toml) enforced twice, on the running
//! stack: by wasm-host, which answers a component's ungranted Dapr call 403
//! itself, and by Dapr, whose per-app API allow-list, access control and
//! scopes (`stack gen`'s derivation of the same manifests) deny it without
//! the host. Each layer is shown alone.

use e2e::*;
use service_manifest::wiring::outbox_topic;
use std::process::Command;

/// An app's sidecar URL, from the run file.
fn sidecar(app: &str, path: &str) -> String {
    let file = run_file();
    let a = file.app(app).expect("an app of dapr.yaml");
    format!("http://127.0.0.1:{}{path}", a.dapr_http_port)
}

/// `method` on an app's sidecar with that app's own token.
fn as_app(app: &str, method: &str, path: &str, body: &[u8]) -> Resp {
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(sidecar(app, path))
        .header("dapr-api-token", dapr_token(app))
        .header("content-type", "application/json")
        .body(body.to_vec())
        .expect("request");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut res = agent.run(req).expect("an answer");
    Resp {
        status: res.status().as_u16(),
        content_type: String::new(),
        retry_after: None,
        body: res.body_mut().read_to_vec().unwrap_or_default(),
    }
}

/// A forged event of a made-up kind, as an image service would record one.
fn forged(tag: &str) -> Vec<u8> {
    format!(r#"{{"event_id":"{tag}","event_ts":1,"op_type":"{tag}","input_size":1}}"#).into_bytes()
}

/// Dapr does not even route an API that is not in the app's allow-list.
fn refused(r: &Resp, what: &str) {
    assert_eq!(r.status, 404, "{what}: {}", r.text());
}

#[test]
fn an_apps_own_token_opens_only_the_dapr_apis_its_manifest_uses() {
    let since = EventsSince::now();
    // Its own tag, so a forged event a broken build once let in does not
    // fail every later run.
    let tag = format!("forged-publish-{}", std::process::id());
    for app in ["image-api-grayscale", "image-api-classify"] {
        // The outbox is the only way its events go out: no publish API,
        // not to `events`, not to the dead letters, not to a new topic.
        for topic in ["events", "events-dead", "made-up"] {
            let r = as_app(
                app,
                "POST",
                &format!("/v1.0/publish/pubsub/{topic}"),
                &forged(&tag),
            );
            refused(&r, &format!("{app} publishing to {topic}"));
        }
        // Nor straight to its outbox's internal topic.
        let internal = outbox_topic(stack::generate::LOCAL_NAMESPACE, app, "events");
        let r = as_app(
            app,
            "POST",
            &format!("/v1.0/publish/outbox/{internal}"),
            &forged(&tag),
        );
        refused(&r, &format!("{app} publishing to {internal}"));
        // Its own state: allowed (the positive control).
        let r = as_app(app, "GET", "/v1.0/state/statestore/rights-probe", b"");
        assert!(
            matches!(r.status, 200 | 204),
            "{app}: {} {}",
            r.status,
            r.text()
        );
    }
    let r = as_app(
        "events-service",
        "POST",
        "/v1.0/publish/pubsub/events",
        &forged(&tag),
    );
    refused(&r, "events-service publishing");
    let r = as_app("web", "GET", "/v1.0/state/statestore/x", b"");
    refused(&r, "web reading state");
    for app in app_ids() {
        let r = as_app(&app, "PUT", "/v1.0/metadata/foo", b"bar");
        refused(&r, &format!("{app} writing metadata"));
        let r = as_app(&app, "POST", "/v1.0/shutdown", b"");
        refused(&r, &format!("{app} shutting its sidecar down"));
        // Health stays open to probes.
        assert_eq!(
            as_app(&app, "GET", "/v1.0/healthz", b"").status,
            204,
            "{app}"
        );
    }
    assert!(
        since.events().iter().all(|e| e["op_type"] != tag.as_str()),
        "a forged event was recorded"
    );
}

#[test]
fn events_still_flow_through_the_outbox() {
    // A size of its own, so exactly its event is found.
    let since = EventsSince::now();
    let body = tagged("rocket.png", 4000 + (std::process::id() % 1000) as usize);
    let r = post_as(
        &client_ip(140),
        &format!("{GRAYSCALE}/grayscale"),
        &[],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let size = body.len() as u64;
    wait_until(std::time::Duration::from_secs(60), "its event", || {
        (since.count_by_size(&[size]) == [1]).then_some(())
    });
}

/// `call METHOD PATH` (dapr-sdk-wasi/examples/call.rs) under wasm-host with
/// `app`'s manifest, beside `app`'s sidecar with its token: (status, body).
fn call_as(app: &str, unchecked: bool, method: &str, path: &str) -> (u16, String) {
    let file = run_file();
    let a = file.app(app).expect("app");
    let mut cmd = Command::new(root().join(".cache/bin/wasm-host"));
    cmd.current_dir(root().join(app))
        .args(["run", "--manifest", "service.toml"])
        .arg(root().join("target/wasm32-wasip2/release/examples/call.wasm"))
        .args([method, path])
        .env("DAPR_HTTP_PORT", a.dapr_http_port.to_string())
        .env("DAPR_API_TOKEN", dapr_token(app))
        .env_remove("WASM_HOST_UNSAFE_NO_SIDECAR_CHECK");
    if unchecked {
        cmd.env("WASM_HOST_UNSAFE_NO_SIDECAR_CHECK", "1");
    }
    let out = cmd.output().expect("wasm-host run");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (status, body) = text.split_once('\n').unwrap_or((&text, ""));
    let status = status.trim().parse().unwrap_or_else(|_| {
        panic!(
            "call printed {text:?}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (status, body.to_string())
}

#[test]
fn the_host_denies_an_ungranted_dapr_call_and_dapr_denies_it_without_the_host() {
    let app = "image-api-grayscale";
    let publish = "/v1.0/publish/pubsub/events";
    // Granted by its manifest: through the host to Dapr.
    let (status, body) = call_as(app, false, "GET", "/v1.0/state/statestore/rights-probe");
    assert!(matches!(status, 200 | 204), "{status} {body}");
    // Not granted: the host answers itself.
    for (method, path) in [
        ("POST", publish),
        ("PUT", "/v1.0/metadata/foo"),
        ("POST", "/v1.0/shutdown"),
        ("GET", "/v1.0/secrets/secretstore/events-db-url"),
        ("GET", "/v1.0/invoke/events-service/method/events"),
    ] {
        let (status, body) = call_as(app, false, method, path);
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert!(body.contains("ERR_HOST_DENIED"), "{body}");
        assert!(body.contains("not granted by its service.toml"), "{body}");
    }
    // The host's check off (a test switch): Dapr refuses on its own.
    for (method, path) in [
        ("POST", publish),
        ("PUT", "/v1.0/metadata/foo"),
        ("POST", "/v1.0/shutdown"),
    ] {
        let (status, body) = call_as(app, true, method, path);
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert!(!body.contains("ERR_HOST_DENIED"), "{body}");
    }
    assert_eq!(
        as_app(app, "GET", "/v1.0/healthz", b"").status,
        204,
        "its sidecar is still up"
    );
}
