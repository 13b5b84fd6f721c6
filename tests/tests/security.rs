//! Dapr's production security on the running stack (`stack run`): every
//! listener on loopback, API and app tokens, mTLS with sentry, access
//! control, scoped secrets, private files. Each denial is shown here.

use e2e::*;
use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// The pids the supervisor recorded, and MariaDB's.
fn stack_pids() -> Vec<u32> {
    let mut pids = Vec::new();
    for app in &app_ids() {
        for what in ["daprd", "app"] {
            pids.push(pid_of(app, what).unwrap_or_else(|| panic!("{app} {what} pid")));
        }
    }
    for file in [".data/run/sentry.pid", ".data/mysql.pid"] {
        let text = std::fs::read_to_string(root().join(file)).expect(file);
        pids.push(text.trim().parse().expect("pid"));
    }
    pids
}

/// Socket inodes held open by `pid`.
fn socket_inodes(pid: u32) -> HashSet<String> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("fd dir");
    fds.flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn every_listener_of_the_stack_is_on_loopback() {
    let mut inodes = HashSet::new();
    for pid in stack_pids() {
        inodes.extend(socket_inodes(pid));
    }
    let mut listening = 0;
    for (table, loopback) in [
        ("/proc/net/tcp", "0100007F"),
        ("/proc/net/tcp6", "00000000000000000000000001000000"),
    ] {
        let text = std::fs::read_to_string(table).expect(table);
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local address, state (0A = LISTEN), inode
            if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
                listening += 1;
                let addr = f[1].split(':').next().unwrap_or_default();
                assert_eq!(
                    addr, loopback,
                    "a listener of the stack on {} ({table})",
                    f[1]
                );
            }
        }
    }
    // 4 sidecars x (HTTP, gRPC, internal gRPC, metrics) + 4 apps + sentry x 3 + MariaDB.
    assert!(listening >= 24, "only {listening} listeners found");
}

/// This machine's addresses other than loopback, or one made for the test.
struct OtherAddress {
    addrs: Vec<String>,
    made: bool,
}

impl OtherAddress {
    fn get() -> Self {
        let out = std::process::Command::new("ip")
            .args(["-o", "-4", "addr", "show"])
            .output()
            .expect("ip addr");
        let addrs: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let cidr = l.split_whitespace().skip_while(|w| *w != "inet").nth(1)?;
                let ip = cidr.split('/').next()?.to_string();
                (!ip.starts_with("127.")).then_some(ip)
            })
            .collect();
        if !addrs.is_empty() {
            return Self { addrs, made: false };
        }
        // A host with loopback only (a network namespace): an address
        // outside 127/8 for the test, which a socket bound to 127.0.0.1
        // does not answer on and one bound to 0.0.0.0 does.
        let ok = std::process::Command::new("ip")
            .args(["addr", "add", "198.18.7.1/32", "dev", "lo"])
            .status();
        assert!(ok.is_ok_and(|s| s.success()), "ip addr add");
        Self {
            addrs: vec!["198.18.7.1".into()],
            made: true,
        }
    }
}

impl Drop for OtherAddress {
    fn drop(&mut self) {
        if self.made {
            let _ = std::process::Command::new("ip")
                .args(["addr", "del", "198.18.7.1/32", "dev", "lo"])
                .status();
        }
    }
}

#[test]
fn no_port_of_the_stack_answers_on_another_address() {
    let other = OtherAddress::get();
    // Every app's and sidecar's port from dapr.yaml (internal gRPC too), and each host's
    // metrics port; sentry's gRPC, healthz and metrics; MariaDB, the
    // broker (Redis), Zipkin.
    let file = run_file();
    let mut ports: Vec<u16> = file
        .apps
        .iter()
        .flat_map(|a| a.ports().into_iter().map(|(p, _)| p))
        .collect();
    for a in &file.apps {
        let metrics = &a.env["WASM_HOST_METRICS"];
        let port = metrics.rsplit(':').next().and_then(|p| p.parse().ok());
        ports.push(port.unwrap_or_else(|| panic!("{}: WASM_HOST_METRICS {metrics}", a.app_id)));
    }
    ports.extend([3520, 3521, 3522, 3306, 6381, 9411]);
    for addr in &other.addrs {
        for &port in &ports {
            let target: std::net::SocketAddr = format!("{addr}:{port}").parse().expect("addr");
            let r =
                std::net::TcpStream::connect_timeout(&target, std::time::Duration::from_secs(1));
            assert!(r.is_err(), "{target} answers");
        }
    }
    // Loopback does answer: the check above can fail.
    assert!(std::net::TcpStream::connect("127.0.0.1:3506").is_ok());
}

#[test]
fn the_dapr_api_needs_the_apps_own_token() {
    let url = format!("{DAPR_GRAYSCALE}/v1.0/state/statestore/client:198.51.100.1");
    let r = get(&url);
    assert_eq!(r.status, 401, "{}", r.text());
    let r = post(&url, &[("dapr-api-token", "guess")], b"");
    assert_eq!(r.status, 401, "{}", r.text());
    // Another app's token does not open this sidecar either.
    let r = dapr_get("web", &url);
    assert_eq!(r.status, 401, "{}", r.text());
    assert_ne!(dapr_get("image-api-grayscale", &url).status, 401);
    // Health needs none, so probes keep working.
    assert_eq!(get(&format!("{DAPR_GRAYSCALE}/v1.0/healthz")).status, 204);
}

#[test]
fn events_service_writes_only_through_dapr() {
    let since = EventsSince::now();
    let event = br#"{"event_id":"forged","event_ts":1,"op_type":"forged","input_size":1}"#;
    for headers in [&[][..], &[("dapr-api-token", "guess")][..]] {
        post(&format!("{EVENTS}/events"), headers, event).assert_error(401, "unauthorized");
        post(&format!("{EVENTS}/create_event"), headers, event).assert_error(401, "unauthorized");
    }
    // The sidecar's own API token is not the app token.
    let t = dapr_token("events-service");
    post(
        &format!("{EVENTS}/events"),
        &[("dapr-api-token", &t)],
        event,
    )
    .assert_error(401, "unauthorized");
    // The documented public routes stay open to direct calls.
    assert_eq!(get(&format!("{EVENTS}/events?limit=1")).status, 200);
    assert_eq!(get(&format!("{EVENTS}/init")).status, 200);
    assert!(since.events().iter().all(|e| e["op_type"] != "forged"));
}

#[test]
fn access_control_allows_only_the_declared_calls() {
    let since = EventsSince::now();
    let invoke = |port: u16, to: &str, method: &str| {
        format!("http://127.0.0.1:{port}/v1.0/invoke/{to}/method/{method}")
    };
    let event = br#"{"event_id":"acl","event_ts":1,"op_type":"forged","input_size":1}"#;
    // web may read events, not write them, and may not call /init.
    let r = dapr_post("web", &invoke(3506, "events-service", "events"), &[], event);
    assert_eq!(r.status, 403, "{}", r.text());
    let r = dapr_get("web", &invoke(3506, "events-service", "init"));
    assert_eq!(r.status, 403, "{}", r.text());
    let r = dapr_get("web", &invoke(3506, "events-service", "events?limit=1"));
    assert_eq!(r.status, 200, "{}", r.text());
    // web may not invoke a route no manifest makes public.
    let r = dapr_get("web", &invoke(3506, "image-api-grayscale", "healthz"));
    assert_eq!(r.status, 403, "{}", r.text());
    // No other app may invoke anything: their manifests grant no
    // invocation, so their sidecars do not even serve the invoke API
    // (api.allowed; tests/tests/rights.rs shows the other APIs).
    for (app, port, to) in [
        ("image-api-grayscale", 3503, "events-service"),
        ("image-api-classify", 3504, "events-service"),
        ("events-service", 3505, "image-api-grayscale"),
        ("image-api-grayscale", 3503, "web"),
    ] {
        let r = dapr_get(app, &invoke(port, to, "healthz"));
        assert_eq!(r.status, 404, "{app}: {}", r.text());
    }
    assert!(since.events().iter().all(|e| e["op_type"] != "forged"));
}

#[test]
fn secrets_are_scoped_to_the_one_app_and_key_that_need_them() {
    let pw = std::fs::read_to_string(root().join(".data/db-password")).expect("password");
    // events-service reads its database URL, and nothing else.
    let url =
        |port: u16, key: &str| format!("http://127.0.0.1:{port}/v1.0/secrets/secretstore/{key}");
    let r = dapr_get("events-service", &url(3505, "events-db-url"));
    assert_eq!(r.status, 200);
    // The store holds another secret (see secrets.template.json).
    let r = dapr_get("events-service", &url(3505, "example-unscoped"));
    assert_eq!(r.status, 403, "{}", r.text());
    // Bulk reads return only what the app may read.
    let r = dapr_get(
        "events-service",
        "http://127.0.0.1:3505/v1.0/secrets/secretstore/bulk",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let keys: Vec<String> = r
        .json()
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, ["events-db-url"]);
    // The other apps' manifests name no secret: their sidecars do not
    // serve the secrets API at all (api.allowed), and do not load the
    // store either (component scopes).
    for (app, port) in [
        ("web", 3506),
        ("image-api-grayscale", 3503),
        ("image-api-classify", 3504),
    ] {
        let r = dapr_get(app, &url(port, "events-db-url"));
        assert_eq!(r.status, 404, "{app}: {}", r.text());
        assert!(!r.body_text().contains(pw.trim()));
    }
    // The broker's password resolves the sidecars' pub/sub component; no
    // app may read it through the API.
    let broker = std::fs::read_to_string(root().join(".data/broker-password")).expect("password");
    for (app, port, status) in [
        ("image-api-grayscale", 3503, 404),
        ("image-api-classify", 3504, 404),
        ("events-service", 3505, 403),
    ] {
        let r = dapr_get(
            app,
            &format!("http://127.0.0.1:{port}/v1.0/secrets/brokersecrets/broker-password"),
        );
        assert_eq!(r.status, status, "{app}: {}", r.text());
        assert!(!r.body_text().contains(broker.trim()));
    }
}

#[test]
fn the_broker_answers_no_one_without_its_password() {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect("127.0.0.1:6381").expect("the broker");
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"PING\r\n").expect("write");
    let mut answer = [0u8; 64];
    let n = s.read(&mut answer).expect("read");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("-NOAUTH"), "{answer}");
}

#[test]
fn secrets_tokens_and_keys_are_private_files() {
    let mut files: Vec<PathBuf> = vec![
        root().join("config/secrets.json"),
        root().join(".data/db-password"),
        root().join("config/broker-secrets.json"),
        root().join(".data/broker-password"),
        root().join(".data/sentry/ca.crt"),
        root().join(".data/sentry/issuer.crt"),
        root().join(".data/sentry/issuer.key"),
    ];
    for app in &app_ids() {
        for t in ["dapr-api-token", "app-api-token"] {
            files.push(root().join(".data/tokens").join(app).join(t));
        }
    }
    for f in files {
        let mode = std::fs::metadata(&f)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "{} is mode {:o}",
            f.display(),
            mode & 0o777
        );
    }
}

#[test]
fn sidecars_use_mtls_certificates_from_sentry() {
    for app in &app_ids() {
        let log = root()
            .join(app)
            .join(".dapr/logs")
            .join(format!("{app}_daprd.log"));
        let text = std::fs::read_to_string(&log).expect("daprd log");
        // daprd logs this only once sentry has signed its certificate.
        assert!(
            text.contains("Starting workload identity expiry watcher")
                && !text.contains("mTLS is disabled"),
            "{}: no workload certificate",
            log.display()
        );
    }
}

#[test]
fn no_secret_or_token_appears_in_any_log_or_answer() {
    let mut secrets = Vec::new();
    for file in [".data/db-password", ".data/broker-password"] {
        let pw = std::fs::read_to_string(root().join(file)).expect("password");
        secrets.push(pw.trim().to_string());
    }
    for app in &app_ids() {
        secrets.push(dapr_token(app));
        secrets.push(app_token(app));
    }
    assert!(secrets.iter().all(|s| s.len() >= 16));
    let mut logs = vec![
        root().join(".logs/stack.log"),
        root().join(".logs/sentry.log"),
        root().join(".logs/broker.log"),
    ];
    for app in &app_ids() {
        for what in ["daprd", "app"] {
            logs.push(
                root()
                    .join(app)
                    .join(".dapr/logs")
                    .join(format!("{app}_{what}.log")),
            );
        }
    }
    for path in logs {
        // Every log must exist: a moved log must fail this test, not skip it.
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "a secret in {}", path.display());
        }
    }
    for r in [
        get(&format!("{EVENTS}/events")),
        get(&format!("{EVENTS}/events?limit=x")),
        get(&format!("{EVENTS}/init")),
        post(&format!("{EVENTS}/events"), &[], b"{}"),
    ] {
        // The whole answer, not the start that failure messages show.
        let body = r.body_text();
        for s in &secrets {
            assert!(!body.contains(s.as_str()), "a secret in an answer");
        }
    }
}
