use super::*;

fn service(folder: &str, text: &str) -> (String, Manifest) {
    (folder.into(), Manifest::parse(text).expect(folder))
}

fn demo() -> Vec<Service> {
    assign(vec![
        service(
            "img",
            r#"[app]
            id = "img"
            routes = [{ path = "/img", verbs = ["POST"], public = true },
                      { path = "/healthz", verbs = ["GET"] }]
            [dapr]
            state = ["statestore"]
            outbox = ["pubsub/events"]"#,
        ),
        service(
            "events",
            r#"[app]
            id = "events"
            max_concurrency = 8
            routes = [{ path = "/events", verbs = ["GET"], public = true }]
            [dapr]
            subscribe = ["pubsub/events"]
            dead_letters = ["pubsub/events-dead"]
            secrets = ["secretstore/db-url"]"#,
        ),
        service(
            "web",
            "[app]\nid = \"web\"\nport = 8080\n[dapr]\ninvoke_public = true",
        ),
    ])
    .expect("valid")
}

fn components() -> Vec<Component> {
    let c = |name: &str, type_: &str, auth: Option<&str>| Component {
        name: name.into(),
        type_: type_.into(),
        auth_secret_store: auth.map(String::from),
        ..Default::default()
    };
    vec![
        c("statestore", "state.sqlite", None),
        c("pubsub", "pubsub.redis", Some("brokersecrets")),
        c("brokersecrets", "secretstores.local.file", None),
        c("secretstore", "secretstores.local.file", None),
        c("unused", "bindings.redis", None),
    ]
}

#[test]
fn a_service_loads_at_most_one_actor_state_store() {
    let mut comps = components();
    comps.push(Component {
        name: "actors-a".into(),
        type_: "state.sqlite".into(),
        actor_state_store: true,
        ..Default::default()
    });
    comps.push(Component {
        name: "actors-b".into(),
        type_: "state.redis".into(),
        actor_state_store: true,
        ..Default::default()
    });
    let one = assign(vec![service(
        "host",
        "[app]\nid = \"host\"\n[dapr]\nstate = [\"actors-a\", \"statestore\"]\nactors = [\"Counter\"]",
    )])
    .expect("valid");
    assert!(component_scopes(&one, &comps).is_ok());
    let two = assign(vec![service(
        "host",
        "[app]\nid = \"host\"\n[dapr]\nstate = [\"actors-a\", \"actors-b\"]",
    )])
    .expect("valid");
    let err = component_scopes(&two, &comps).expect_err("two actor stores");
    assert!(
        err.contains("actors-a, actors-b") && err.contains("actorStateStore"),
        "{err}"
    );
}

#[test]
fn ports_are_assigned_in_member_order_unless_pinned() {
    let s = demo();
    assert_eq!(s[0].ports, FIRST_PORTS);
    assert_eq!(
        s[1].ports,
        Ports {
            app: 9006,
            dapr_http: 3504,
            dapr_grpc: 3604,
            dapr_internal_grpc: 3804,
            metrics: 9094,
            host_metrics: 9294
        }
    );
    assert_eq!((s[2].ports.app, s[2].ports.dapr_http), (8080, 3505));
    let clash = assign(vec![
        service("a", "[app]\nid = \"a\""),
        service("b", "[app]\nid = \"b\"\nport = 9005"),
    ]);
    assert!(
        clash
            .expect_err("clash")
            .contains("port 9005: both a and b")
    );
}

#[test]
fn the_gateway_may_invoke_the_public_routes_only() {
    let s = demo();
    let ops = |app: &str| callers(app, &s);
    assert_eq!(
        ops("img"),
        vec![("web".into(), vec![("/img".into(), vec!["POST".into()])])]
    );
    assert_eq!(
        ops("events"),
        vec![("web".into(), vec![("/events".into(), vec!["GET".into()])])]
    );
    assert!(ops("web").is_empty(), "nobody invokes the gateway");
}

#[test]
fn components_are_scoped_to_their_users() {
    let scopes = component_scopes(&demo(), &components()).expect("scopes");
    let ids = |c: &str| scopes[c].clone();
    assert_eq!(ids("statestore"), ["img"]);
    assert_eq!(ids("pubsub"), ["img", "events"]);
    assert_eq!(
        ids("brokersecrets"),
        ["img", "events"],
        "the pub/sub's auth store"
    );
    assert_eq!(ids("secretstore"), ["events"]);
    assert!(ids("unused").is_empty());
}

#[test]
fn topic_scopes_cover_the_outbox_and_dead_letters() {
    let t = topic_scopes(&demo(), &components(), "pubsub", "default");
    let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        t.publishing,
        vec![
            ("img".into(), v(&["defaultimgeventsoutbox", "events"])),
            ("events".into(), v(&["events-dead"])),
        ]
    );
    assert_eq!(
        t.subscription,
        vec![("img".into(), vec![]), ("events".into(), v(&["events"]))]
    );
    assert_eq!(
        t.topics,
        v(&["defaultimgeventsoutbox", "events", "events-dead"])
    );
}

#[test]
fn an_outbox_pubsub_takes_the_internal_topics() {
    let mut comps = components();
    comps[0].outbox_pubsub = Some("outbox".into());
    comps.push(Component {
        name: "outbox".into(),
        type_: "pubsub.redis".into(),
        ..Default::default()
    });
    let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let outbox = topic_scopes(&demo(), &comps, "outbox", "default");
    assert_eq!(
        outbox.publishing,
        vec![("img".into(), v(&["defaultimgeventsoutbox"]))]
    );
    assert_eq!(outbox.topics, v(&["defaultimgeventsoutbox"]));
    let pubsub = topic_scopes(&demo(), &comps, "pubsub", "default");
    assert_eq!(pubsub.topics, v(&["events", "events-dead"]));
    // Loaded by the app that publishes through the outbox, and only by it.
    let scopes = component_scopes(&demo(), &comps).expect("scopes");
    assert_eq!(scopes["outbox"], v(&["img"]));
    // Naming a component that is not a pub/sub is refused.
    comps[0].outbox_pubsub = Some("secretstore".into());
    let err = component_scopes(&demo(), &comps).expect_err("not a pub/sub");
    assert!(err.contains("outboxPubsub"), "{err}");
}

#[test]
fn mistakes_across_manifests_are_refused() {
    let bad = |found: Vec<(String, Manifest)>, why: &str| {
        let err = assign(found).expect_err(why);
        assert!(err.contains(why), "{err}");
    };
    bad(
        vec![service("a", "[app]\nid = \"b\"")],
        "not its folder's name",
    );
    bad(vec![service("a", "env = []")], "no [app]");
    bad(
        vec![service(
            "a",
            "[app]\nid = \"a\"\n[dapr]\ninvoke = [{app = \"b\", path = \"/x\", verbs = [\"GET\"]}]",
        )],
        "no service `b`",
    );
    bad(
        vec![
            service(
                "a",
                "[app]\nid = \"a\"\n[dapr]\ninvoke = [{app = \"b\", path = \"/x\", verbs = [\"POST\"]}]",
            ),
            service(
                "b",
                "[app]\nid = \"b\"\nroutes = [{path = \"/x\", verbs = [\"GET\"]}]",
            ),
        ],
        "does not serve",
    );
    let s = assign(vec![service(
        "a",
        "[app]\nid = \"a\"\n[dapr]\nstate = [\"pubsub\"]",
    )])
    .expect("valid alone");
    let err = component_scopes(&s, &components()).expect_err("kind");
    assert!(err.contains("not a state.* component"), "{err}");
    let s = assign(vec![service(
        "a",
        "[app]\nid = \"a\"\n[dapr]\nstate = [\"nope\"]",
    )])
    .expect("valid alone");
    assert!(
        component_scopes(&s, &components())
            .expect_err("missing")
            .contains("no component `nope`")
    );
}
