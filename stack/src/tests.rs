use super::*;

const FILE: &str = r#"
version: 1
common:
  resourcesPath: ./config/components
  configFilePath: ./config/config.yaml
  env:
    SHARED: "1"
    LEVEL: common
apps:
  - appID: one
    appDirPath: ./one
    appPort: 9001
    daprHTTPPort: 3501
    daprGRPCPort: 50001
    metricsPort: 9091
    appMaxConcurrency: 8
    env:
      LEVEL: app
    command: [wasmtime, serve, x.wasm]
  - appID: two
    appDirPath: ./two
    appPort: 9002
    daprHTTPPort: 3502
    daprGRPCPort: 50002
    metricsPort: 9092
    configFilePath: ./other.yaml
    command: [wasmtime, serve, y.wasm]
"#;

fn parse(text: &str) -> Result<RunFile, RunFileError> {
    RunFile::parse(text)
}

#[test]
fn the_repositorys_run_file_is_valid() {
    let text = include_str!("../../dapr.yaml");
    let file = parse(text).expect("dapr.yaml");
    assert!(file.apps.len() >= 4);
}

#[test]
fn daprd_listens_on_loopback_only_with_the_apps_settings() {
    let file = parse(FILE).expect("parse");
    let one = file.app("one").expect("one");
    let args = one.daprd_args(&file, Path::new("/repo"), None);
    assert_flags(
        &args,
        &[
            ("--app-id", "one"),
            ("--app-port", "9001"),
            ("--dapr-http-port", "3501"),
            ("--metrics-port", "9091"),
            ("--app-max-concurrency", "8"),
            ("--resources-path", "/repo/config/components"),
            ("--dapr-listen-addresses", "127.0.0.1"),
            ("--dapr-internal-grpc-listen-address", "127.0.0.1"),
            ("--metrics-listen-address", "127.0.0.1"),
            ("--app-channel-address", "127.0.0.1"),
        ],
    );
    assert_eq!(one.dir(Path::new("/repo")), Path::new("/repo/one"));
    let two = file.app("two").expect("two");
    let args = two.daprd_args(&file, Path::new("/repo"), Some("127.0.0.1:50009"));
    // Shared configuration first, the app's own on top.
    let configs: Vec<&str> = args
        .windows(2)
        .filter(|w| w[0] == "--config")
        .map(|w| w[1].as_str())
        .collect();
    assert_eq!(configs, ["/repo/config/config.yaml", "/repo/other.yaml"]);
    assert!(!args.contains(&"--app-max-concurrency".to_string()));
    assert!(args.contains(&"--enable-mtls".to_string()));
    assert!(
        args.windows(2)
            .any(|w| w == ["--sentry-address", "127.0.0.1:50009"])
    );
    let one = one.daprd_args(&file, Path::new("/repo"), None);
    assert!(!one.contains(&"--enable-mtls".to_string()));
}

#[test]
fn placement_is_one_loopback_address_passed_to_the_apps_that_name_it() {
    let file = parse(FILE).expect("parse");
    assert_eq!(file.placement_port(), Ok(None));
    let with = FILE.replace(
        "    appDirPath: ./two",
        "    appDirPath: ./two\n    placementHostAddress: 127.0.0.1:50020",
    );
    let file = parse(&with).expect("parse");
    assert_eq!(file.placement_port(), Ok(Some(50020)));
    let two = file
        .app("two")
        .expect("two")
        .daprd_args(&file, Path::new("/r"), None);
    assert_flags(&two, &[("--placement-host-address", "127.0.0.1:50020")]);
    let one = file
        .app("one")
        .expect("one")
        .daprd_args(&file, Path::new("/r"), None);
    assert!(!one.contains(&"--placement-host-address".to_string()));
    for (bad, why) in [
        ("0.0.0.0:50020", "is not 127.0.0.1:PORT"),
        ("127.0.0.1:x", "is not 127.0.0.1:PORT"),
        ("127.0.0.1:9091", "port 9091"),
    ] {
        let text = with.replace("127.0.0.1:50020", bad);
        let err = parse(&text).expect_err(bad).to_string();
        assert!(err.contains(why), "{bad}: {err}");
    }
    let two_of_them = with.replace(
        "  configFilePath: ./config/config.yaml\n",
        "  configFilePath: ./config/config.yaml\n  placementHostAddress: 127.0.0.1:50030\n",
    );
    let err = parse(&two_of_them).expect_err("two placements").to_string();
    assert!(err.contains("one placement"), "{err}");
}

/// Each `flag` in `args` is followed by its `value`.
pub(crate) fn assert_flags(args: &[String], want: &[(&str, &str)]) {
    for (flag, value) in want {
        let i = args.iter().position(|a| a == flag).expect(flag);
        assert_eq!(args.get(i + 1).map(String::as_str), Some(*value), "{flag}");
    }
}

#[test]
fn app_env_layers_dapr_common_and_app() {
    let file = parse(FILE).expect("parse");
    let env = file.app("one").expect("one").app_env(&file);
    assert_eq!(env["DAPR_HTTP_PORT"], "3501");
    assert_eq!(env["APP_ID"], "one");
    assert_eq!(env["SHARED"], "1");
    assert_eq!(env["LEVEL"], "app");
    let env = file.app("two").expect("two").app_env(&file);
    assert_eq!(env["LEVEL"], "common");
}

#[test]
fn bad_run_files_are_refused_with_a_reason() {
    let clash = FILE.replace("daprHTTPPort: 3502", "daprHTTPPort: 9001");
    assert_eq!(
        parse(&clash).err(),
        Some(RunFileError::PortClash(
            9001,
            "one's app port".into(),
            "two's Dapr HTTP port".into()
        ))
    );
    let dup = FILE.replace("appID: two", "appID: one");
    assert_eq!(
        parse(&dup).err(),
        Some(RunFileError::DuplicateApp("one".into()))
    );
    let bad = FILE.replace("appID: two", "appID: ../two");
    assert!(matches!(parse(&bad), Err(RunFileError::BadAppId(_))));
    let empty = FILE.replace("[wasmtime, serve, y.wasm]", "[]");
    assert_eq!(
        parse(&empty).err(),
        Some(RunFileError::NoCommand("two".into()))
    );
    let zero = FILE.replace("metricsPort: 9092", "metricsPort: 0");
    assert!(matches!(parse(&zero), Err(RunFileError::ZeroPort(_))));
    let unknown = FILE.replace("appPort: 9002", "appPort: 9002\n    appProtocol: grpc");
    let err = parse(&unknown).expect_err("refused").to_string();
    assert!(err.contains("appProtocol"), "{err}");
    let version = FILE.replace("version: 1", "version: 2");
    assert_eq!(parse(&version).err(), Some(RunFileError::Version(2)));
    let no_config = FILE.replace("  configFilePath: ./config/config.yaml\n", "");
    assert_eq!(
        parse(&no_config).err(),
        Some(RunFileError::Missing("one".into(), "configFilePath"))
    );
}

#[test]
fn backoff_doubles_to_its_ceiling_and_resets_after_a_stable_run() {
    let s = Duration::from_secs;
    let mut b = Backoff::new(s(1), s(8), s(60));
    let delays: Vec<_> = (0..6).map(|_| b.after_exit(s(2))).collect();
    assert_eq!(delays, [s(1), s(2), s(4), s(8), s(8), s(8)]);
    assert_eq!(b.after_exit(s(60)), s(1));
    assert_eq!(b.after_exit(s(0)), s(2));
    let mut odd = Backoff::new(s(5), s(1), s(60));
    assert_eq!(odd.after_exit(s(0)), s(5));
    assert_eq!(odd.after_exit(s(0)), s(5));
}

#[test]
fn paths_are_folded_lexically() {
    assert_eq!(
        normalize("./image-api-classify/../.cache/model/x"),
        PathBuf::from(".cache/model/x")
    );
    assert_eq!(normalize("../a/./b"), PathBuf::from("../a/b"));
}

#[test]
fn utc_formats_known_instants() {
    assert_eq!(utc(0), "1970-01-01T00:00:00Z");
    assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(utc(1_795_368_677), "2026-11-22T17:31:17Z");
}
