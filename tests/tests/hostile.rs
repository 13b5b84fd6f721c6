//! Hostile clients against the running stack (issue 19): slow uploads and
//! headers, slow readers, an idle-connection flood, the heaviest images the
//! limits allow, metadata bombs, oversized bodies and bad heads. In each
//! case a normal client, on its own address, keeps getting 200, and the
//! host's connections and memory come back afterwards. Attackers use
//! 127.0.2.0 onwards; normal clients `client_ip(200..)`.

use e2e::*;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Attacker number `n`'s own loopback address.
fn attacker(n: u32) -> String {
    format!("127.0.{}.{}", 2 + n / 250, 1 + n % 250)
}

/// An app's host process.
fn host_pid(app: &str) -> u32 {
    pid_of(app, "app").unwrap_or_else(|| panic!("{app} is not running"))
}

/// Resident memory of a process, MiB.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb / 1024)
        .expect("VmRSS")
}

/// Sockets a process holds open.
fn sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|l| l.to_string_lossy().starts_with("socket:"))
                .count()
        })
        .unwrap_or(0)
}

/// Waits until the host holds no more sockets than it did before.
fn sockets_come_back(app: &str, before: usize) {
    let pid = host_pid(app);
    wait_until(
        Duration::from_secs(60),
        "the host's sockets to come back",
        || (sockets(pid) <= before + 4).then_some(()),
    );
}

/// Whether the server has closed this connection (EOF or reset). Reads
/// whatever it sent first.
fn closed_by_server(s: &mut TcpStream) -> bool {
    let _ = s.set_nonblocking(true);
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// A normal client's request on its own address: it must get 200.
fn normal_upload(n: u8, url: &str) {
    let r = post_as(&client_ip(n), url, &[], &sample("rocket.png"));
    assert_eq!(r.status, 200, "{url}: {}", r.text());
}

#[test]
fn slow_uploads_and_slow_headers_hold_no_instance() {
    for (port, path, app, me) in [
        (9005, "/grayscale", "image-api-grayscale", 200u8),
        (8080, "/api/grayscale", "web", 201),
    ] {
        let before = sockets(host_pid(app));
        let to = format!("127.0.0.1:{port}");
        // 200 uploads that announce 1 MB and send a byte a second, and 200
        // requests that send a header line every two seconds, each from
        // its own address.
        let mut uploads: Vec<TcpStream> = (0..200)
            .map(|i| {
                let mut s = connect_from(&attacker(i), &to);
                let head = format!(
                    "POST {path} HTTP/1.1\r\nHost: {to}\r\nContent-Length: 1000000\r\n\r\nab"
                );
                s.write_all(head.as_bytes()).expect("head");
                s
            })
            .collect();
        let mut heads: Vec<TcpStream> = (200..400)
            .map(|i| {
                let mut s = connect_from(&attacker(i), &to);
                s.write_all(format!("POST {path} HTTP/1.1\r\n").as_bytes())
                    .expect("line");
                s
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let trickle = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut round = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    for s in &mut uploads {
                        let _ = s.write_all(b"x");
                    }
                    if round.is_multiple_of(2) {
                        for s in &mut heads {
                            let _ = s.write_all(b"X-Slow: 1\r\n");
                        }
                    }
                    round += 1;
                    std::thread::sleep(Duration::from_secs(1));
                }
                (uploads, heads)
            })
        };
        // The service has 3 instances: were each slow client to hold one,
        // these would wait and end in 503.
        for _ in 0..4 {
            normal_upload(me, &format!("http://{to}{path}"));
        }
        // The header timeout closes the slow heads; the uploads are still
        // trickling within their body deadline.
        let pid = host_pid(app);
        wait_until(Duration::from_secs(40), "slow heads to be closed", || {
            (sockets(pid) <= before + 210).then_some(())
        });
        stop.store(true, Ordering::Relaxed);
        let (_uploads, mut heads) = trickle.join().expect("trickle");
        assert!(
            heads.iter_mut().all(closed_by_server),
            "{app}: a slow head is still open"
        );
        // The body deadline (30 s) ends the uploads: 408, connection closed.
        sockets_come_back(app, before);
        normal_upload(me, &format!("http://{to}{path}"));
    }
}

#[test]
fn slow_readers_of_large_answers_hold_no_instance() {
    use socket2::{Domain, Socket, Type};
    let app = "image-api-grayscale";
    let before = sockets(host_pid(app));
    let noise = service_common::decode::noise_png(1500, 1500, 19);
    let to: std::net::SocketAddr = "127.0.0.1:9005".parse().expect("addr");
    // 40 clients with a tiny receive window send a noise image (its
    // grayscale is as large) and never read the answer.
    let readers: Vec<TcpStream> = (0..40)
        .map(|i| {
            let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
            socket.set_recv_buffer_size(4096).expect("rcvbuf");
            let from: std::net::IpAddr = attacker(500 + i).parse().expect("ip");
            socket
                .bind(&std::net::SocketAddr::new(from, 0).into())
                .expect("bind");
            socket.connect(&to.into()).expect("connect");
            let mut s: TcpStream = socket.into();
            let head = format!(
                "POST /grayscale HTTP/1.1\r\nHost: {to}\r\nAccept: image/png\r\nContent-Length: {}\r\n\r\n",
                noise.len()
            );
            s.write_all(head.as_bytes()).expect("head");
            s.write_all(&noise).expect("body");
            s
        })
        .collect();
    // Every instance would be stuck writing an answer if the host did not
    // buffer it: the service and its health check must still answer.
    normal_upload(202, &format!("{GRAYSCALE}/grayscale"));
    assert_eq!(get(&format!("{GRAYSCALE}/healthz")).status, 200);
    // The write timeout closes the stuck connections, though the readers
    // still hold theirs open.
    sockets_come_back(app, before);
    drop(readers);
    normal_upload(202, &format!("{GRAYSCALE}/grayscale"));
}

#[test]
fn an_idle_connection_flood_is_capped_and_timed_out() {
    use std::io::BufRead as _;
    let app = "web";
    let pid = host_pid(app);
    let before = sockets(pid);
    // 20,000 connections that send nothing, 1,000 from each of 20
    // addresses, held by two child processes (a process may hold 20,000
    // descriptors here, and we cannot raise that).
    let mut floods: Vec<_> = [0u32, 10_000]
        .iter()
        .map(|first| {
            let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
                .args(["--exact", "flood_helper", "--ignored", "--nocapture"])
                .env("FLOOD", format!("{first},10000"))
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("flood helper");
            let out = child.stdout.take().expect("stdout");
            let mut lines = std::io::BufReader::new(out).lines();
            let opened = lines
                .by_ref()
                .map_while(Result::ok)
                .any(|l| l == "FLOOD open");
            assert!(opened, "the flood helper did not open its connections");
            // Keep reading what else it prints, so it never writes to a
            // closed pipe.
            std::thread::spawn(move || lines.for_each(drop));
            child
        })
        .collect();
    let held = sockets(pid);
    assert!(
        held <= before + 1024,
        "over the connection cap: {held} sockets (before {before})"
    );
    // A normal client gets in once the header timeout has closed the idle
    // ones (an idle flood from many addresses can fill the total cap until
    // then; it never reaches the descriptor limit).
    wait_until(
        Duration::from_secs(30),
        "a normal client to get the page",
        || {
            try_request_as(&client_ip(203), "GET", &format!("{WEB}/"), &[], b"")
                .filter(|r| r.status == 200)
        },
    );
    // Each helper now checks that every one of its connections was closed
    // by the host: refused at once, or ended by the header timeout.
    for child in &mut floods {
        drop(child.stdin.take());
    }
    for child in floods {
        let out = child.wait_with_output().expect("flood helper");
        assert!(out.status.success(), "a flood connection stayed open");
    }
    sockets_come_back(app, before);
    let log =
        std::fs::read_to_string(root().join("web/.dapr/logs/web_app.log")).unwrap_or_default();
    assert!(
        !log.contains("Too many open files"),
        "web ran out of descriptors"
    );
}

/// Half of the flood above, in a child process: opens `FLOOD=first,count`
/// idle connections to web, says `FLOOD open`, waits for its stdin to close,
/// then for the host to have closed every one of them.
#[test]
#[ignore = "a helper: an_idle_connection_flood_is_capped_and_timed_out runs it"]
fn flood_helper() {
    let Some((first, count)) = std::env::var("FLOOD").ok().and_then(|v| {
        let (a, b) = v.split_once(',')?;
        Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?))
    }) else {
        return;
    };
    let mut flood: Vec<TcpStream> = (first..first + count)
        .map(|i| connect_from(&attacker(1000 + i / 1000), "127.0.0.1:8080"))
        .collect();
    println!("FLOOD open");
    let _ = std::io::stdout().flush();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    wait_until(
        Duration::from_secs(40),
        "every idle connection to be closed",
        || {
            flood.retain_mut(|s| !closed_by_server(s));
            flood.is_empty().then_some(())
        },
    );
}

#[test]
fn the_heaviest_images_stay_within_the_memory_bound_and_memory_comes_back() {
    let app = "image-api-grayscale";
    let pid = host_pid(app);
    let idle = rss_mib(pid);
    let bound = idle + worst_case_mib(app);
    // 24 Mpx of 16-bit RGBA: 192 MB decoded, from a 200 KB upload; the
    // stack runs with MAX_IMAGE_SIDE=5000 (scripts/test).
    let heavy = service_common::decode::heavy_png(4800, 5000);
    let peak = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_mib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let attackers = (0..32).map(|i| attacker(600 + i)).collect();
    let mut statuses: Vec<u16> =
        post_from_each(attackers, &format!("{GRAYSCALE}/grayscale"), &heavy)
            .into_iter()
            .map(|r| r.status)
            .collect();
    done.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");
    statuses.sort_unstable();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );
    assert!(statuses.contains(&200), "{statuses:?}");
    let peak = peak.load(Ordering::Relaxed);
    assert!(
        peak <= bound,
        "RSS peaked at {peak} MiB; the bound is {bound} MiB"
    );
    // Instances that grew are not kept: their memory goes back.
    wait_until(Duration::from_secs(60), "RSS to return near idle", || {
        (rss_mib(pid) <= idle + 64).then_some(())
    });
    eprintln!(
        "grayscale: idle {idle} MiB, peak {peak} MiB, bound {bound} MiB, answers {statuses:?}"
    );
}

/// Component instances alive in an app's host (its metrics).
fn instances_live(app: &str) -> u64 {
    let file = run_file();
    let addr = &file.app(app).expect("app").env["WASM_HOST_METRICS"];
    get(&format!("http://{addr}/metrics"))
        .body_text()
        .lines()
        .find_map(|l| l.strip_prefix("wasm_host_instances_live ")?.parse().ok())
        .expect("wasm_host_instances_live")
}

#[test]
fn instances_that_held_an_upload_are_not_kept() {
    let before = instances_live("web");
    // Near the gateway's body limit (web/service.toml: 4,000,000 bytes),
    // 16 at once from 16 clients: each instance that held one grows to
    // about 10 MiB, past web's recycle_above_mib (8).
    let photo = tagged("cat.jpg", 3_900_000 - sample("cat.jpg").len());
    let clients = (0..16).map(|i| attacker(700 + i)).collect();
    for r in post_from_each(clients, &format!("{WEB}/api/grayscale"), &photo) {
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // They are dropped after their request, and their memory with them,
    // instead of idling at their peak for idle_instance_secs.
    wait_until(
        Duration::from_secs(30),
        "web's instances to be dropped",
        || (instances_live("web") <= before).then_some(()),
    );
}

#[test]
fn metadata_bombs_are_refused_quickly_in_flat_memory() {
    use service_common::png_meta::png_with_metadata_bomb;
    for (app, url, me) in [
        (
            "image-api-grayscale",
            format!("{GRAYSCALE}/grayscale"),
            204u8,
        ),
        ("image-api-classify", format!("{CLASSIFY}/classify"), 205),
    ] {
        let pid = host_pid(app);
        let before = rss_mib(pid);
        for kind in [b"iCCP", b"zTXt"] {
            for mib in [200, 900] {
                let bomb = png_with_metadata_bomb(kind, mib);
                let r = post_as(&client_ip(me), &url, &[], &bomb);
                r.assert_error(422, "image_too_large");
            }
        }
        let after = rss_mib(pid);
        assert!(
            after <= before + 32,
            "{app}: RSS went from {before} to {after} MiB"
        );
    }
}

#[test]
fn a_body_over_the_gateways_limit_is_413_before_it_is_forwarded() {
    let big = vec![7u8; 6_000_000];
    let r = post_as(&client_ip(206), &format!("{WEB}/api/grayscale"), &[], &big);
    r.assert_error(413, "payload_too_large");
    // Just under the limit goes through to the service (which finds no image).
    let under = vec![7u8; 3_900_000];
    let r = post_as(
        &client_ip(206),
        &format!("{WEB}/api/grayscale"),
        &[],
        &under,
    );
    r.assert_error(415, "unsupported_media_type");
}

#[test]
fn cheap_reads_are_rate_limited_per_client() {
    // events-service's service.toml: 20 a second per client, 40 at once.
    for path in ["/events?limit=1000", "/init"] {
        let me = client_ip(208);
        let answers: Vec<Resp> = (0..60)
            .map(|_| get_as(&me, &format!("{EVENTS}{path}"), &[]))
            .collect();
        let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
        // A refusal among them, in the shared shape (not "the next one": the
        // bucket refills 20 a second while the requests run).
        let r = answers
            .iter()
            .find(|r| r.status == 429)
            .unwrap_or_else(|| panic!("{path}: {statuses:?}"));
        r.assert_error(429, "rate_limited");
        assert!(r.retry_after.is_some(), "{path}: no Retry-After");
        // Another client is not held up.
        assert_eq!(
            get_as(&client_ip(209), &format!("{EVENTS}{path}"), &[]).status,
            200
        );
        wait_until(Duration::from_secs(10), "the bucket to refill", || {
            (get_as(&me, &format!("{EVENTS}{path}"), &[]).status == 200).then_some(())
        });
    }
}

/// A raw request and its answer.
fn raw(from: &str, port: u16, request: &str) -> Resp {
    let mut s = connect_from(from, &format!("127.0.0.1:{port}"));
    s.write_all(request.as_bytes()).expect("request");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    parse_response(&out).unwrap_or_else(|| panic!("no answer to {request:?}"))
}

#[test]
fn a_request_without_host_or_with_an_unknown_expectation_is_refused_by_the_host() {
    for port in [9005, 8080] {
        let me = client_ip(207);
        raw(
            &me,
            port,
            "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
        )
        .assert_error(400, "bad_request");
        raw(&me, port, "GET /healthz HTTP/1.0\r\n\r\n").assert_error(400, "bad_request");
        raw(
            &me,
            port,
            "GET /healthz HTTP/1.1\r\nHost: a:1\r\nExpect: 999-foo\r\nConnection: close\r\n\r\n",
        )
        .assert_error(417, "expectation_failed");
        let ok = raw(
            &me,
            port,
            "GET /healthz HTTP/1.1\r\nHost: a:1\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(ok.status, 200);
    }
}
