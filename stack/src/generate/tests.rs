use super::*;

#[test]
fn the_generated_files_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (path, text) in files(&root).expect("generate") {
        let old = std::fs::read_to_string(root.join(&path)).unwrap_or_default();
        assert!(old == text, "{} is stale: run `stack gen`", path.display());
    }
}

fn demo() -> Vec<Service> {
    let m = |t: &str| service_manifest::Manifest::parse(t).expect("manifest");
    wiring::assign(vec![
            (
                "img".into(),
                m("[app]\nid = \"img\"\nroutes = [{ path = \"/img\", verbs = [\"POST\"], public = true }]\n\
                   [dapr]\nstate = [\"statestore\"]\noutbox = [\"pubsub/events\"]"),
            ),
            (
                "ev".into(),
                m("[app]\nid = \"ev\"\n[dapr]\nsecrets = [\"secretstore/db-url\"]"),
            ),
            ("web".into(), m("[app]\nid = \"web\"\nport = 8080\n[dapr]\ninvoke_public = true")),
        ])
        .expect("valid")
}

/// The lines of `text` that are not comments.
fn yaml_only(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn an_apps_configuration_is_exactly_its_callers_secrets_and_apis() {
    let s = demo();
    let stores = ["secretstore".to_string()];
    assert_eq!(
        yaml_only(&app_config(&s[0], &s, &stores, "ns")),
        "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: img\nspec:\n\
             \x20 accessControl:\n    defaultAction: deny\n    trustDomain: public\n    policies:\n\
             \x20     - appId: web\n        defaultAction: deny\n        trustDomain: public\n\
             \x20       namespace: ns\n        operations:\n          - name: /img\n\
             \x20           httpVerb: [\"POST\"]\n            action: allow\n\
             \x20 secrets:\n    scopes:\n      - storeName: secretstore\n        defaultAccess: deny\n\
             \x20 api:\n    allowed:\n      - {name: state, version: v1.0, protocol: http}\n\
             \x20     - {name: state, version: v1.0, protocol: grpc}\n"
    );
    let ev = yaml_only(&app_config(&s[1], &s, &stores, "ns"));
    assert!(
        ev.contains(
            "  accessControl:\n    defaultAction: deny\n    trustDomain: public\n  secrets:"
        ),
        "{ev}"
    );
    assert!(ev.contains("allowedSecrets: [\"db-url\"]"), "{ev}");
    assert!(
        ev.contains("{name: secrets, version: v1.0, protocol: http}"),
        "{ev}"
    );
    let web = yaml_only(&app_config(&s[2], &s, &stores, "ns"));
    assert!(
        web.contains("{name: invoke, version: v1.0, protocol: http}"),
        "{web}"
    );
    assert!(
        !web.contains("state") && !web.contains("allowedSecrets"),
        "{web}"
    );
}

#[test]
fn the_run_file_lists_each_service_with_its_ports() {
    let text = run_file(&demo());
    let file = crate::RunFile::parse(&text).expect("a valid run file");
    let ports: Vec<_> = file
        .apps
        .iter()
        .map(|a| (a.app_id.as_str(), a.app_port, a.dapr_http_port))
        .collect();
    assert_eq!(
        ports,
        [("img", 9005, 3503), ("ev", 9006, 3504), ("web", 8080, 3505)]
    );
    assert_eq!(
        file.apps[2].command[3..],
        [
            "--manifest=service.toml",
            "../target/wasm32-wasip2/release/web.cwasm"
        ]
    );
}

#[test]
fn a_service_with_actors_gets_placement_and_the_actors_api() {
    let m = |t: &str| service_manifest::Manifest::parse(t).expect("manifest");
    let s = wiring::assign(vec![
        (
            "counter".into(),
            m("[app]\nid = \"counter\"\n[dapr]\nstate = [\"statestore\"]\nactors = [\"Counter\"]"),
        ),
        ("plain".into(), m("[app]\nid = \"plain\"")),
    ])
    .expect("valid");
    let file = crate::RunFile::parse(&run_file(&s)).expect("a valid run file");
    assert_eq!(
        file.placement_port(),
        Ok(Some(crate::control_plane::LOCAL_PLACEMENT_PORT))
    );
    assert_eq!(file.apps[1].placement(&file), None);
    let config = yaml_only(&app_config(&s[0], &s, &[], "ns"));
    assert!(
        config.contains("{name: actors, version: v1.0, protocol: http}"),
        "{config}"
    );
}

#[test]
fn scopes_replace_the_old_ones_and_their_comment() {
    let text = "kind: Component\nspec: {}\n# who\nscopes:\n  - a\n";
    let once = with_scopes(text, &["b".into(), "c".into()]);
    assert!(
        once.starts_with("kind: Component\nspec: {}\n# --- generated"),
        "{once}"
    );
    assert!(once.ends_with("scopes:\n  - b\n  - c\n"), "{once}");
    assert_eq!(
        with_scopes(&once, &["b".into(), "c".into()]),
        once,
        "idempotent"
    );
}

#[test]
fn topic_scopes_go_between_the_markers() {
    let text = format!("spec:\n  metadata:\n    {BEGIN}\n    - old\n    {END}\nauth: {{}}\n");
    let t = TopicScopes {
        publishing: vec![("a".into(), vec!["x".into()]), ("b".into(), vec![])],
        subscription: vec![("a".into(), vec![]), ("b".into(), vec!["x".into()])],
        topics: vec!["x".into()],
    };
    let out = with_topic_scopes(&text, &t).expect("markers");
    assert!(!out.contains("- old"));
    assert!(
        out.contains("- name: publishingScopes\n      value: \"a=x;b=\"\n"),
        "{out}"
    );
    assert!(
        out.contains("- name: subscriptionScopes\n      value: \"a=;b=x\"\n"),
        "{out}"
    );
    assert!(
        out.contains("- name: protectedTopics\n      value: \"x\"\n"),
        "{out}"
    );
    assert!(out.ends_with(&format!("    {END}\nauth: {{}}\n")));
    assert_eq!(
        with_topic_scopes(&out, &t).expect("again"),
        out,
        "idempotent"
    );
    assert!(
        with_topic_scopes("spec: {}\n", &t).is_err(),
        "markers required"
    );
}

#[test]
fn components_are_read_for_their_wiring() {
    let c = parse_component(
            "kind: Component\nmetadata: {name: p}\nspec: {type: pubsub.redis}\nauth: {secretStore: s}\n",
        )
        .expect("yaml")
        .expect("a component");
    assert_eq!((c.name.as_str(), c.type_.as_str()), ("p", "pubsub.redis"));
    assert_eq!(c.auth_secret_store.as_deref(), Some("s"));
    assert!(!c.actor_state_store);
    let actors = parse_component(include_str!(
        "../../../dapr-sdk-wasi/tests/components/actorstore.yaml"
    ))
    .expect("yaml")
    .expect("a component");
    assert!(actors.actor_state_store, "{actors:?}");
    assert_eq!(actors.outbox_pubsub, None);
    let store = parse_component(include_str!("../../../config/components/statestore.yaml"))
        .expect("yaml")
        .expect("a component");
    assert_eq!(store.outbox_pubsub.as_deref(), Some("outbox"));
    assert_eq!(parse_component("kind: Resiliency\n").expect("yaml"), None);
    assert!(parse_component("kind: Component\n").is_err());
}
