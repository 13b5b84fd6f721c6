//! wasm-host on the running stack: the client is the TCP peer (or the
//! gateway's word through the sidecar), and a component gets only what its
//! service.toml grants. Some tests start a host of their own beside the stack,
//! on ports 9120-9129.

use e2e::*;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A wasm-host of the test's own, stopped (and reaped) on drop.
struct Host {
    child: Child,
    log: PathBuf,
}

impl Host {
    /// Serves `component` (precompiled by scripts/build) on 127.0.0.1:`port`
    /// with `manifest`, in its own folder under `.data/host-test`.
    fn start(name: &str, port: u16, manifest: &str, component: &str, env: &[(&str, &str)]) -> Host {
        let dir = root().join(".data/host-test").join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("service.toml"), manifest).expect("manifest");
        let log = dir.join("host.log");
        let out = std::fs::File::create(&log).expect("log");
        let wasm = root()
            .join("target/wasm32-wasip2/release")
            .join(format!("{component}.cwasm"));
        let child = Command::new(root().join(".cache/bin/wasm-host"))
            .arg("serve")
            .arg(format!("--addr=127.0.0.1:{port}"))
            .arg("--manifest=service.toml")
            .arg(wasm)
            .current_dir(&dir)
            .env_clear()
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("wasm-host");
        let host = Host { child, log };
        wait_until(Duration::from_secs(20), "the test's host to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        host
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn each_loopback_address_is_its_own_client() {
    let photo = sample("rocket.png");
    let url = format!("{GRAYSCALE}/grayscale");
    let (a, b) = (client_ip(120), client_ip(121));
    let mut last = None;
    for _ in 0..11 {
        last = Some(post_as(&a, &url, &[], &photo));
    }
    last.expect("answer").assert_error(429, "rate_limited");
    // Another address is another client.
    assert_eq!(post_as(&b, &url, &[], &photo).status, 200);
    // What the state store records is the peer's address.
    let r = dapr_get(
        "image-api-grayscale",
        &format!("{DAPR_GRAYSCALE}/v1.0/state/statestore/client:{b}"),
    );
    assert_eq!(r.json()["address"], b.as_str(), "{}", r.text());
}

#[test]
fn forged_forwarding_headers_do_not_escape_the_limit() {
    let photo = sample("rocket.png");
    for (base, n) in [
        (format!("{GRAYSCALE}/grayscale"), 0u8),
        (format!("{WEB}/api/grayscale"), 1),
    ] {
        let me = client_ip(122 + n);
        let mut statuses = Vec::new();
        for i in 0..11 {
            let fake = format!("203.0.113.{i}");
            let fwd = format!("for={fake}");
            let r = post_as(
                &me,
                &base,
                &[
                    ("x-forwarded-for", &fake),
                    ("forwarded", &fwd),
                    ("x-real-ip", &fake),
                ],
                &photo,
            );
            statuses.push(r.status);
        }
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            10,
            "{base}: {statuses:?}"
        );
        assert_eq!(statuses.last(), Some(&429), "{base}: {statuses:?}");
    }
    // None of the forged addresses became a client.
    for i in 0..11 {
        let r = dapr_get(
            "image-api-grayscale",
            &format!("{DAPR_GRAYSCALE}/v1.0/state/statestore/client:203.0.113.{i}"),
        );
        // 204 is Dapr's answer for a key it does not have; an error would
        // have an empty body too, so the status is what proves it.
        assert_eq!(
            (r.status, r.body.is_empty()),
            (204, true),
            "203.0.113.{i} was recorded: {}",
            r.text()
        );
    }
}

#[test]
fn an_early_answer_reaches_a_caller_still_sending_its_body() {
    // A rate-limited caller sending a large body (daprd's app channel is
    // one) must get its 429, not `broken pipe` (which the gateway could only
    // report as a 503). The host now reads the body whole before the
    // component decides; this keeps that true through the gateway too.
    let photo = sample("rocket.png");
    // Under web's body limit (4 MB), so both hosts pass it on.
    let big = vec![0u8; 3 << 20];
    for (base, n) in [
        (format!("{GRAYSCALE}/grayscale"), 0u8),
        (format!("{WEB}/api/grayscale"), 1),
    ] {
        let me = client_ip(124 + n);
        for _ in 0..10 {
            assert_eq!(post_as(&me, &base, &[], &photo).status, 200, "{base}");
        }
        for _ in 0..3 {
            post_as(&me, &base, &[], &big).assert_error(429, "rate_limited");
        }
    }
}

#[test]
fn outbound_http_off_the_list_is_an_error_not_a_connection() {
    // A listener standing in for "some other host"; the component is told
    // it is its sidecar (DAPR_HTTP_ENDPOINT, which the SDK reads first),
    // but the manifest allows another port only, and the host knows no
    // sidecar (no DAPR_HTTP_PORT).
    let other = TcpListener::bind("127.0.0.1:0").expect("bind");
    other.set_nonblocking(true).expect("nonblocking");
    let port = other.local_addr().expect("addr").port().to_string();
    let endpoint = format!("http://127.0.0.1:{port}");
    let host = Host::start(
        "outbound",
        9120,
        "env = [\"DAPR_HTTP_ENDPOINT\"]\n[http]\noutbound = [\"127.0.0.1:9\"]\n",
        "web",
        &[("DAPR_HTTP_ENDPOINT", &endpoint)],
    );
    let r = get("http://127.0.0.1:9120/api/events");
    r.assert_error(503, "unavailable");
    assert!(
        other.accept().is_err(),
        "the component reached a host its manifest does not list"
    );
    let log = host.log();
    assert!(
        log.contains(&format!("denied outbound HTTP to http://127.0.0.1:{port}")),
        "{log}"
    );
}

#[test]
fn a_sidecar_call_the_manifest_does_not_grant_never_leaves_the_host() {
    // The same, with the listener as the sidecar (DAPR_HTTP_PORT) and a
    // manifest that grants web no invocation: the host answers 403 itself.
    let sidecar = TcpListener::bind("127.0.0.1:0").expect("bind");
    sidecar.set_nonblocking(true).expect("nonblocking");
    let port = sidecar.local_addr().expect("addr").port().to_string();
    let host = Host::start(
        "sidecar",
        9123,
        "env = [\"DAPR_HTTP_PORT\"]\n",
        "web",
        &[("DAPR_HTTP_PORT", &port)],
    );
    let r = get("http://127.0.0.1:9123/api/events");
    r.assert_error(503, "unavailable");
    assert!(sidecar.accept().is_err(), "the call reached the sidecar");
    let log = host.log();
    assert!(
        log.contains("denied Dapr call: GET /v1.0/invoke/events-service/method/events"),
        "{log}"
    );
}

#[test]
fn events_service_may_open_sockets_to_the_database_only() {
    // events-service's own manifest and component, reading its secret
    // through its sidecar. Told the database is elsewhere, the host refuses
    // the real database's address.
    let manifest =
        std::fs::read_to_string(root().join("events-service/service.toml")).expect("service.toml");
    let token = dapr_token("events-service");
    let db_port = std::env::var("DB_PORT").unwrap_or_else(|_| "3306".into());
    let env = |db: &str| {
        vec![
            ("DAPR_HTTP_PORT".to_string(), "3505".to_string()),
            ("DAPR_API_TOKEN".to_string(), token.clone()),
            ("DB_PORT".to_string(), db.to_string()),
        ]
    };
    let start = |name: &str, port: u16, db: &str| {
        let env = env(db);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Host::start(name, port, &manifest, "events-service", &env)
    };
    let denied = start("events-denied", 9121, "9");
    get("http://127.0.0.1:9121/events?limit=1").assert_error(503, "unavailable");
    let log = denied.log();
    assert!(
        log.contains(&format!("denied socket TcpConnect 127.0.0.1:{db_port}")),
        "{log}"
    );
    drop(denied);
    // The same with the database's address granted: it works, so the
    // refusal above was the manifest's doing.
    let _allowed = start("events-allowed", 9122, &db_port);
    let r = get("http://127.0.0.1:9122/events?limit=1");
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn classify_instances_share_the_process_graph() {
    // A fresh classify process: its instances are all made during this
    // test (the warm-up's would otherwise serve every request).
    let out = stack(&["restart", "image-api-classify"]);
    assert!(out.status.success(), "{out:?}");
    let log_path = root().join("image-api-classify/.dapr/logs/image-api-classify_app.log");
    let read = || std::fs::read_to_string(&log_path).expect("classify log");
    // Only this process's part of the log (the supervisor marks each start).
    let current = |text: &str| {
        text.rsplit("stack: start")
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let created = || {
        metric(
            &host_metrics("image-api-classify"),
            "wasm_host_instances_created_total",
        )
    };
    // Its health checks may have made one already.
    let before = created();
    // Three at once (service.toml's memory budget), from fresh clients.
    let photo = sample("cat.jpg");
    let clients = (0..3).map(|i| client_ip(130 + i)).collect();
    for r in post_from_each(clients, &format!("{CLASSIFY}/classify"), &photo) {
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let made = created() - before;
    assert!(made >= 1, "no instance made for three requests at once");
    // However many instances that took, one graph load: the one at start.
    let after = current(&read());
    assert_eq!(
        after.matches("loaded nn graph").count(),
        1,
        "{made} instances: {after}"
    );
    // Warm again, as scripts/test left it, for the tests after.
    script("warm-up", &[]);
}
