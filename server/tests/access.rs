//! Who may do what, through real HTTP on 127.0.0.1: sign-in, sessions, roles on every server
//! function and API route, first-run setup, CSRF and security headers, secrets at rest, SSRF.

use crate::helpers::{session_cookie, spawn_app, spawn_with, Backend, TestApp};
use herald::auth::{Access, Actor, InstallAdmin};
use herald::domain::account::Role;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const PASSWORD: &str = "correct horse battery";

/// Adds a console user to the default program straight through the access service (as `herald
/// user create` does).
async fn add_user(app: &TestApp, email: &str, role: Role) -> String {
    add_member(app, &app.program, email, role).await
}

/// Gives `email` (a new account, or an existing one) `role` in `program`.
async fn add_member(app: &TestApp, program: &str, email: &str, role: Role) -> String {
    let store = herald::store::connect(&app.database_url).await.unwrap();
    let access = Access::new(store.clone(), Default::default(), Default::default());
    let actor = Actor::command_line(herald::domain::ids::ProgramId::parse(program).unwrap());
    access
        .add_member(&actor, email, PASSWORD, role)
        .await
        .unwrap()
        .member
        .user
        .id
        .to_string()
}

async fn command_line_access(app: &TestApp) -> Access {
    let store = herald::store::connect(&app.database_url).await.unwrap();
    Access::new(store, Default::default(), Default::default())
}

/// An export document with no webhooks in it.
const EMPTY_EXPORT: &str = r#"{"format": "herald.program-export", "version": 1, "program": "Empty", "exported_at": "2026-01-01T00:00:00Z", "webhooks": []}"#;

/// Server functions that act outside any program (everything else is told which program).
const PROGRAMLESS: &[&str] = &[
    "signed_in_user",
    "database_notice",
    "sign_in_status",
    "login",
    "logout",
    "check_setup_token",
    "complete_setup",
    "instance_info",
    "list_programs",
    "create_program",
    "rename_program",
    "set_program_archived",
];

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Posts a server function as the browser does (form-encoded, same origin), in the default
/// program unless the body names one.
async fn sfn(app: &TestApp, cookie: Option<&str>, name: &str, body: &Body) -> reqwest::Response {
    sfn_in(app, &app.program, cookie, name, body).await
}

/// Posts a server function in `program` (added to the body unless it names one, or the
/// function acts outside programs).
async fn sfn_in(
    app: &TestApp,
    program: &str,
    cookie: Option<&str>,
    name: &str,
    body: &Body,
) -> reqwest::Response {
    let body = &match body {
        _ if PROGRAMLESS.contains(&name) => body.clone(),
        Body::Form(pairs) if pairs.iter().any(|(k, _)| *k == "program") => body.clone(),
        Body::Form(pairs) => {
            let mut pairs = pairs.clone();
            pairs.insert(0, ("program", program.to_owned()));
            Body::Form(pairs)
        }
        Body::Json(v) => {
            let mut v = v.clone();
            if v.get("program").is_none() {
                v["program"] = json!(program);
            }
            Body::Json(v)
        }
    };
    let mut req = client()
        .post(app.url(&format!("/sfn/{name}")))
        .header(ORIGIN, &app.base);
    if let Some(c) = cookie {
        req = req.header(COOKIE, format!("herald_session={c}"));
    }
    req = match body {
        Body::Form(pairs) => req
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(serde_urlencoded(pairs)),
        Body::Json(v) => req
            .header(CONTENT_TYPE, "application/json")
            .body(v.to_string()),
    };
    req.send().await.unwrap()
}

fn serde_urlencoded(pairs: &[(&str, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
        .finish()
}

async fn login(app: &TestApp, email: &str, password: &str) -> (StatusCode, Option<String>, String) {
    let body = Body::Form(vec![
        ("email", email.to_owned()),
        ("password", password.to_owned()),
        ("next", "/".to_owned()),
    ]);
    let resp = sfn(app, None, "login", &body).await;
    let status = resp.status();
    let cookie = session_cookie(&resp);
    (status, cookie, resp.text().await.unwrap())
}

async fn signed_in(app: &TestApp, email: &str) -> String {
    let (status, cookie, body) = login(app, email, PASSWORD).await;
    cookie.unwrap_or_else(|| panic!("login as {email} failed: {status} {body}"))
}

/// `list_webhooks` with no filters.
fn list() -> Body {
    Body::Form(vec![
        ("name", "".into()),
        ("start", "".into()),
        ("end", "".into()),
        ("window", "".into()),
    ])
}

#[derive(Clone)]
enum Body {
    Form(Vec<(&'static str, String)>),
    Json(Value),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Rule {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in user.
    Viewer,
    /// Admins only.
    Admin,
    /// Install admins only (programs).
    InstallAdmin,
}

/// Every server function with its rule and a valid request. A server function missing here fails
/// `every_server_function_and_api_route_has_a_rule`.
async fn server_function_table(
    app: &TestApp,
    webhook: &str,
    key_id: &str,
    program_b: &str,
) -> Vec<(&'static str, Rule, Body)> {
    let draft = json!({"name": "Drafted", "url": "http://127.0.0.1:9/hook", "event_types": ["user.created"]});
    let other_user = add_user(
        app,
        &format!("gone-{}@example.com", uuid::Uuid::new_v4().simple()),
        Role::Viewer,
    )
    .await;
    let unique = || format!("new-{}@example.com", uuid::Uuid::new_v4().simple());
    use Body::{Form, Json};
    use Rule::*;
    vec![
        ("signed_in_user", Public, Form(vec![])),
        // Any signed-in user, in no program in particular: the banner on every page.
        ("database_notice", Viewer, Form(vec![])),
        ("sign_in_status", Public, Form(vec![])),
        (
            "login",
            Public,
            Form(vec![
                ("email", "viewer@example.com".into()),
                ("password", PASSWORD.into()),
                ("next", "/".into()),
            ]),
        ),
        (
            "check_setup_token",
            Public,
            Form(vec![("token", "nope".into())]),
        ),
        (
            "complete_setup",
            Public,
            Form(vec![
                ("token", "nope".into()),
                ("email", unique()),
                ("password", PASSWORD.into()),
                ("confirm", PASSWORD.into()),
            ]),
        ),
        ("list_webhooks", Viewer, list()),
        ("webhook_choices", Viewer, Form(vec![])),
        (
            "load_webhook_details",
            Viewer,
            Form(vec![("id", webhook.into()), ("window", "7d".into())]),
        ),
        ("list_validated_event_types", Viewer, Form(vec![])),
        (
            "set_event_type_validation",
            Admin,
            Form(vec![
                ("event_type", "reward.redeemed".into()),
                ("enabled", "false".into()),
            ]),
        ),
        (
            "load_program_insights",
            Viewer,
            Form(vec![("window", "30d".into())]),
        ),
        (
            "list_attempts",
            Viewer,
            Form(
                ["webhook_id", "start", "end", "status", "search", "cursor"]
                    .map(|k| (k, String::new()))
                    .to_vec(),
            ),
        ),
        (
            "attempt_detail",
            Viewer,
            Form(vec![("id", "att_00000000000000000000000000000000".into())]),
        ),
        ("instance_info", Viewer, Form(vec![])),
        ("load_alert_settings", Admin, Form(vec![])),
        (
            "save_alert_settings",
            Admin,
            Form(vec![
                ("smtp_host", String::new()),
                ("smtp_port", "587".into()),
                ("smtp_tls", "starttls".into()),
                ("smtp_username", String::new()),
                ("smtp_password", String::new()),
                ("from", String::new()),
                ("recipients", String::new()),
                ("window_minutes", "60".into()),
            ]),
        ),
        ("send_test_alert", Admin, Form(vec![])),
        ("list_alerts", Viewer, Form(vec![])),
        (
            "list_deliveries",
            Viewer,
            Form(
                [
                    "status",
                    "webhook_id",
                    "event_type",
                    "start",
                    "end",
                    "cursor",
                ]
                .map(|k| (k, String::new()))
                .to_vec(),
            ),
        ),
        (
            "start_bulk_replay",
            Admin,
            Form(vec![
                ("webhook_id", String::new()),
                ("event_type", "reward.redeemed".into()),
                ("start", String::new()),
                ("end", String::new()),
            ]),
        ),
        (
            "load_replay_job",
            Viewer,
            Form(vec![("id", "rpl_00000000000000000000000000000000".into())]),
        ),
        ("list_replay_jobs", Viewer, Form(vec![])),
        (
            "set_webhook_enabled",
            Admin,
            Form(vec![("id", webhook.into()), ("enabled", "true".into())]),
        ),
        ("new_draft_secret", Admin, Form(vec![])),
        (
            "check_webhook_name",
            Admin,
            Form(vec![("name", "Fresh name".into()), ("except", "".into())]),
        ),
        (
            "verify_draft",
            Admin,
            Json(
                json!({"draft": {"name": "Drafted", "url": "http://127.0.0.1:9/hook", "auth": {"kind": "none"}}, "editing": ""}),
            ),
        ),
        ("create_webhook", Admin, Json(json!({"draft": draft}))),
        (
            "update_webhook",
            Admin,
            Json(
                json!({"id": webhook, "draft": {"name": "Renamed", "url": "http://127.0.0.1:9/hook", "event_types": ["user.created"]}, "version": 1}),
            ),
        ),
        (
            "load_webhook_draft",
            Admin,
            Form(vec![("id", webhook.into())]),
        ),
        (
            "rotate_webhook_secret",
            Admin,
            Form(vec![("id", webhook.into())]),
        ),
        (
            "send_test",
            Admin,
            Form(vec![
                ("id", webhook.into()),
                ("event_type", "user.created".into()),
            ]),
        ),
        (
            "replay_delivery",
            Admin,
            Form(vec![(
                "delivery_id",
                "dlv_00000000000000000000000000000000".into(),
            )]),
        ),
        ("list_users", Admin, Form(vec![])),
        (
            "create_user",
            Admin,
            Form(vec![
                ("email", unique()),
                ("password", PASSWORD.into()),
                ("role", "viewer".into()),
            ]),
        ),
        ("delete_user", Admin, Form(vec![("id", other_user)])),
        ("list_api_keys", Admin, Form(vec![])),
        (
            "create_api_key",
            Admin,
            Form(vec![("name", "from the table".into())]),
        ),
        ("revoke_api_key", Admin, Form(vec![("id", key_id.into())])),
        ("list_activity", Admin, Form(vec![("before", "".into())])),
        (
            "export_program",
            Admin,
            Form(vec![("passphrase", "".into())]),
        ),
        (
            "preview_import",
            Admin,
            Form(vec![
                ("document", EMPTY_EXPORT.into()),
                ("on_conflict", "skip".into()),
                ("passphrase", "".into()),
            ]),
        ),
        (
            "apply_import",
            Admin,
            Form(vec![
                ("document", EMPTY_EXPORT.into()),
                ("on_conflict", "skip".into()),
                ("passphrase", "".into()),
            ]),
        ),
        ("list_programs", InstallAdmin, Form(vec![])),
        (
            "create_program",
            InstallAdmin,
            Form(vec![(
                "name",
                format!("Program {}", uuid::Uuid::new_v4().simple()),
            )]),
        ),
        (
            "rename_program",
            InstallAdmin,
            Form(vec![
                ("id", program_b.into()),
                ("name", format!("B {}", uuid::Uuid::new_v4().simple())),
            ]),
        ),
        (
            "set_program_archived",
            InstallAdmin,
            Form(vec![("id", program_b.into()), ("archived", "false".into())]),
        ),
        ("delete_webhook", Admin, Form(vec![("id", webhook.into())])),
        // Last: it ends the caller's session.
        ("logout", Viewer, Form(vec![])),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_function_and_api_route_has_a_rule() {
    let app = spawn_app(Backend::Sqlite, "access table").await.unwrap();
    add_user(&app, "admin@example.com", Role::Admin).await;
    add_user(&app, "viewer@example.com", Role::Viewer).await;
    add_user(&app, "install@example.com", Role::Viewer).await;
    let access = command_line_access(&app).await;
    access
        .set_install_admin(&InstallAdmin::command_line(), "install@example.com", true)
        .await
        .unwrap();
    let program_b = access
        .create_program(&InstallAdmin::command_line(), "Program B")
        .await
        .unwrap()
        .id
        .to_string();
    let hook = app
        .create_webhook(json!({"name": "Table", "url": "http://127.0.0.1:9/hook", "event_types": ["user.created"]}))
        .await;
    let webhook = hook["id"].as_str().unwrap().to_owned();

    // The table covers exactly the registered server functions.
    let registered: BTreeSet<String> = server_fn::axum::server_fn_paths()
        .map(|(path, _)| path.to_owned())
        .collect();
    let table = server_function_table(
        &app,
        &webhook,
        "key_00000000000000000000000000000000",
        &program_b,
    )
    .await;
    let listed: BTreeSet<String> = table.iter().map(|(n, ..)| format!("/sfn/{n}")).collect();
    let missing: Vec<_> = registered.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "server functions without an access rule: {missing:?}"
    );
    assert_eq!(
        registered, listed,
        "the table names functions that do not exist"
    );

    for caller in ["anonymous", "viewer", "admin", "install"] {
        let cookie = match caller {
            "anonymous" => None,
            who => Some(signed_in(&app, &format!("{who}@example.com")).await),
        };
        // A fresh table per caller: ids of things the previous caller removed are recreated.
        let hook = app
            .create_webhook(json!({"name": format!("For {caller}"), "url": "http://127.0.0.1:9/hook", "event_types": ["user.created"]}))
            .await;
        let store = herald::store::connect(&app.database_url).await.unwrap();
        let access = Access::new(store.clone(), Default::default(), Default::default());
        let actor = Actor::command_line(store.default_program().await.unwrap());
        let (_, issued) = access
            .create_api_key(
                &actor,
                "to revoke",
                herald::domain::account::KeyScope::Admin,
            )
            .await
            .unwrap();
        let table = server_function_table(
            &app,
            hook["id"].as_str().unwrap(),
            issued.id.as_str(),
            &program_b,
        )
        .await;
        for (name, rule, body) in &table {
            let resp = sfn(&app, cookie.as_deref(), name, body).await;
            let status = resp.status();
            let text = resp.text().await.unwrap();
            let refused = status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN;
            match (caller, rule) {
                ("anonymous", Rule::Public)
                | ("viewer", Rule::Public | Rule::Viewer)
                | ("admin", Rule::Public | Rule::Viewer | Rule::Admin)
                | ("install", _) => {
                    assert!(
                        !refused,
                        "{caller} calling {name} ({rule:?}) was refused: {status} {text}"
                    );
                    assert!(
                        status.as_u16() < 500,
                        "{caller} calling {name}: {status} {text}"
                    );
                }
                ("anonymous", _) => {
                    assert_eq!(
                        status,
                        StatusCode::UNAUTHORIZED,
                        "{caller} calling {name}: {text}"
                    )
                }
                ("viewer", Rule::Admin | Rule::InstallAdmin) | ("admin", Rule::InstallAdmin) => {
                    assert_eq!(
                        status,
                        StatusCode::FORBIDDEN,
                        "{caller} calling {name}: {text}"
                    );
                    assert!(text.contains("Forbidden"), "{text}");
                }
                other => unreachable!("{other:?}"),
            }
        }
    }

    // Every API route: anonymous and a console session get 401, an API key gets through.
    let viewer = signed_in(&app, "viewer@example.com").await;
    let (_, doc) = app.get("/api/v1/openapi.json").await;
    let hook = app
        .create_webhook(json!({"name": "Api table", "url": "http://127.0.0.1:9/hook", "event_types": ["user.created"]}))
        .await;
    let id = hook["id"].as_str().unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 10, "{paths:?}");
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let url = app.url(&format!("/api/v1{}", path.replace("{id}", id)));
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let anon = client().request(method.clone(), &url).send().await.unwrap();
            assert_eq!(
                anon.status(),
                StatusCode::UNAUTHORIZED,
                "anonymous {method} {path}"
            );
            let session = client()
                .request(method.clone(), &url)
                .header(COOKIE, format!("herald_session={viewer}"))
                .header(ORIGIN, &app.base)
                .send()
                .await
                .unwrap();
            assert_eq!(
                session.status(),
                StatusCode::UNAUTHORIZED,
                "session {method} {path}"
            );
            if method != reqwest::Method::DELETE {
                let keyed = client()
                    .request(method.clone(), &url)
                    .bearer_auth(&app.key)
                    .json(&json!({"event_type": "user.created", "data": {}}))
                    .send()
                    .await
                    .unwrap();
                assert!(
                    !matches!(
                        keyed.status(),
                        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                    ),
                    "key {method} {path}: {}",
                    keyed.status()
                );
            }
        }
    }
    for public in ["/healthz", "/api/v1/openapi.json", "/login"] {
        let resp = client().get(app.url(public)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{public} is public");
    }
    // Static files pass the gate (whether the site is built where the test runs or not).
    for file in ["/favicon.svg", "/pkg/herald.css"] {
        let resp = client().get(app.url(file)).send().await.unwrap();
        assert!(
            !matches!(
                resp.status(),
                StatusCode::SEE_OTHER | StatusCode::UNAUTHORIZED
            ),
            "{file} is public: {}",
            resp.status()
        );
    }
    for page in [
        "/",
        "/audit-logs",
        "/settings",
        "/activity",
        "/webhooks/new",
    ] {
        let resp = client().get(app.url(page)).send().await.unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::SEE_OTHER,
            "{page} needs a session"
        );
        let to = resp.headers()[LOCATION].to_str().unwrap().to_owned();
        assert!(to.starts_with("/login"), "{page} → {to}");
    }
    app.stop().await;
}

/// A user of program A can neither read nor change anything of program B, by any server
/// function or API route: naming B is refused outright, and naming A with B's ids finds nothing.
async fn members_of_one_program_reach_nothing_of_another(backend: Backend) {
    let Some(app) = spawn_app(backend, "program isolation").await else {
        return;
    };
    let access = command_line_access(&app).await;
    let b = access
        .create_program(&InstallAdmin::command_line(), "Program B")
        .await
        .unwrap();
    let program_b = b.id.to_string();
    add_user(&app, "ana@example.com", Role::Admin).await;
    let bob = add_member(&app, &program_b, "bob@example.com", Role::Admin).await;
    // Ana is an admin of A only; Bob is an admin of B only.
    let ana = signed_in(&app, "ana@example.com").await;
    let bob_session = signed_in(&app, "bob@example.com").await;

    // B's things, made by Bob in B.
    let created = sfn_in(
        &app,
        &program_b,
        Some(&bob_session),
        "create_webhook",
        &Body::Json(
            json!({"draft": {"name": "B hook", "url": "http://127.0.0.1:9/hook", "event_types": ["user.created"]}}),
        ),
    )
    .await;
    assert_eq!(created.status(), StatusCode::OK);
    let created: Value = created.json().await.unwrap();
    let hook_b = created["webhook"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    let key = sfn_in(
        &app,
        &program_b,
        Some(&bob_session),
        "create_api_key",
        &Body::Form(vec![("name", "b key".into())]),
    )
    .await;
    let key: Value = key.json().await.unwrap();
    let key_b = key["view"]["id"].as_str().unwrap().to_owned();
    let plain_b = key["key"].as_str().unwrap().to_owned();
    let test = sfn_in(
        &app,
        &program_b,
        Some(&bob_session),
        "send_test",
        &Body::Form(vec![
            ("id", hook_b.clone()),
            ("event_type", "user.created".into()),
        ]),
    )
    .await;
    let test: Value = test.json().await.unwrap();
    let attempt_b = test["attempt_id"].as_str().unwrap().to_owned();

    let table = server_function_table(&app, &hook_b, &key_b, &program_b).await;
    for (name, rule, body) in &table {
        if *rule == Rule::Public || PROGRAMLESS.contains(name) || *name == "logout" {
            continue;
        }
        // Naming B: refused, whatever the function.
        let resp = sfn_in(&app, &program_b, Some(&ana), name, body).await;
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, StatusCode::FORBIDDEN, "{name} in B: {text}");
        // Naming A with B's ids: nothing of B comes back or changes.
        let mut body = body.clone();
        if let Body::Form(pairs) = &mut body {
            for (k, v) in pairs.iter_mut() {
                if *k == "id" && v.starts_with("att_") {
                    *v = attempt_b.clone();
                }
                if *k == "id" && *name == "delete_user" {
                    *v = bob.clone();
                }
            }
        }
        let resp = sfn_in(&app, &app.program, Some(&ana), name, &body).await;
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(
            !text.contains(&hook_b) && !text.contains("B hook") && !text.contains(&key_b),
            "{name} in A answered with B's data: {status} {text}"
        );
        if body_names_an_id(&body) {
            assert!(
                status.is_client_error(),
                "{name} in A with B's ids: {status} {text}"
            );
        }
    }
    let detail = sfn_in(
        &app,
        &app.program,
        Some(&ana),
        "attempt_detail",
        &Body::Form(vec![("id", attempt_b.clone())]),
    )
    .await;
    assert_eq!(detail.status(), StatusCode::NOT_FOUND);

    // B is as Bob left it.
    let listed = sfn_in(
        &app,
        &program_b,
        Some(&bob_session),
        "list_webhooks",
        &list(),
    )
    .await;
    let listed: Value = listed.json().await.unwrap();
    let listed = &listed["items"];
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["name"], "B hook");
    assert_eq!(listed[0]["enabled"], true);
    let members = sfn_in(
        &app,
        &program_b,
        Some(&bob_session),
        "list_users",
        &Body::Form(vec![]),
    )
    .await;
    let members: Value = members.json().await.unwrap();
    assert_eq!(members[0]["id"], bob.as_str());
    let activity = sfn_in(
        &app,
        &program_b,
        Some(&bob_session),
        "list_activity",
        &Body::Form(vec![("before", "".into())]),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(!activity.contains("ana@example.com"), "{activity}");

    // The REST API: a key of A finds none of B's things; B's key works in B only.
    for path in [
        format!("/api/v1/webhooks/{hook_b}"),
        format!("/api/v1/webhooks/{hook_b}/attempts"),
    ] {
        let (status, body) = app.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (_, listed) = app.get("/api/v1/webhooks").await;
    assert!(!listed.to_string().contains(&hook_b), "{listed}");
    let in_b = client()
        .get(app.url("/api/v1/webhooks"))
        .bearer_auth(&plain_b)
        .send()
        .await
        .unwrap();
    let in_b: Value = in_b.json().await.unwrap();
    assert!(in_b.to_string().contains(&hook_b), "{in_b}");

    // Each lands in their own program; Bob cannot open A's pages' data.
    let home = client()
        .get(app.url("/"))
        .header(COOKIE, format!("herald_session={bob_session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        home.headers()[LOCATION].to_str().unwrap(),
        format!("/p/{program_b}")
    );
    // Archived (by an install admin, in the console), B's key stops working at once and B
    // leaves Bob's programs.
    add_user(&app, "root@example.com", Role::Viewer).await;
    access
        .set_install_admin(&InstallAdmin::command_line(), "root@example.com", true)
        .await
        .unwrap();
    let root = signed_in(&app, "root@example.com").await;
    let archived = sfn(
        &app,
        Some(&root),
        "set_program_archived",
        &Body::Form(vec![("id", program_b.clone()), ("archived", "true".into())]),
    )
    .await;
    assert_eq!(archived.status(), StatusCode::OK);
    let refused = client()
        .get(app.url("/api/v1/webhooks"))
        .bearer_auth(&plain_b)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let me = sfn(
        &app,
        Some(&bob_session),
        "signed_in_user",
        &Body::Form(vec![]),
    )
    .await;
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["programs"], json!([]), "{me}");
    let listed = sfn_in(
        &app,
        &program_b,
        Some(&bob_session),
        "list_webhooks",
        &list(),
    )
    .await;
    assert_eq!(listed.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

/// Whether a request names a webhook, key, user, delivery or attempt by id.
fn body_names_an_id(body: &Body) -> bool {
    match body {
        Body::Form(pairs) => pairs
            .iter()
            .any(|(k, v)| matches!(*k, "id" | "delivery_id") && !v.is_empty()),
        Body::Json(v) => v.get("id").is_some(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_is_throttled_and_never_says_whether_an_account_exists() {
    let app = spawn_app(Backend::Sqlite, "throttle").await.unwrap();
    add_user(&app, "ana@example.com", Role::Admin).await;
    let (s1, c1, wrong_password) = login(&app, "ana@example.com", "not the password").await;
    let (s2, c2, no_account) = login(&app, "nobody@example.com", "not the password").await;
    assert_eq!(
        (s1, s2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert!(c1.is_none() && c2.is_none());
    assert_eq!(
        wrong_password, no_account,
        "same answer with and without an account"
    );
    assert!(
        wrong_password.contains("E-mail or password is incorrect"),
        "{wrong_password}"
    );
    for _ in 0..4 {
        login(&app, "ana@example.com", "still wrong").await;
    }
    // Five failures for the account: even the right password is refused for now.
    let (status, cookie, body) = login(&app, "ana@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(cookie.is_none());
    assert!(body.contains("Too many sign-in attempts"), "{body}");
    // So is an unknown address, the same way.
    for _ in 0..5 {
        login(&app, "ghost@example.com", "wrong").await;
    }
    let (status, _, _) = login(&app, "ghost@example.com", "wrong").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Per address: 11 failures so far (refused tries do not count); 9 more on fresh accounts
    // reach the limit of 20 and lock the address out for every account.
    add_user(&app, "bea@example.com", Role::Viewer).await;
    for i in 0..9 {
        login(&app, &format!("spray{i}@example.com"), "wrong").await;
    }
    let (status, _, _) = login(&app, "bea@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "address limit");
    app.stop().await;
}

async fn sessions_expire_and_logout_ends_them(backend: Backend) {
    let Some(app) = spawn_app(backend, "sessions").await else {
        return;
    };
    add_user(&app, "ana@example.com", Role::Admin).await;
    let age = |cookie: String, column: &'static str| {
        let url = app.database_url.clone();
        async move {
            let store = herald::store::connect(&url).await.unwrap();
            let (s, _) = store.session(&sha256(&cookie)).await.unwrap().unwrap();
            let past = s.created_at - chrono::Duration::hours(13);
            drop(store);
            let sql = format!("UPDATE sessions SET {column} = $1");
            if url.starts_with("sqlite") {
                let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
                sqlx::query(&sql).bind(past).execute(&pool).await.unwrap();
            } else {
                let pool = sqlx::PgPool::connect(&url).await.unwrap();
                sqlx::query(&sql).bind(past).execute(&pool).await.unwrap();
            }
        }
    };

    // Idle: no request for longer than the idle window.
    let idle = signed_in(&app, "ana@example.com").await;
    assert_eq!(
        sfn(&app, Some(&idle), "list_webhooks", &list())
            .await
            .status(),
        StatusCode::OK
    );
    age(idle.clone(), "last_seen_at").await;
    assert_eq!(
        sfn(&app, Some(&idle), "list_webhooks", &list())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // Absolute: however active, the session ends at its expiry.
    let old = signed_in(&app, "ana@example.com").await;
    age(old.clone(), "expires_at").await;
    let page = client()
        .get(app.url("/settings"))
        .header(COOKIE, format!("herald_session={old}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);

    // Logout: the cookie is cleared and the token is dead even if replayed.
    let live = signed_in(&app, "ana@example.com").await;
    let page = client()
        .get(app.url("/settings"))
        .header(COOKIE, format!("herald_session={live}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.status(),
        StatusCode::SEE_OTHER,
        "into the home program"
    );
    let settings = format!("/p/{}/settings", app.program);
    assert_eq!(page.headers()[LOCATION], settings.as_str());
    let page = client()
        .get(app.url(&settings))
        .header(COOKIE, format!("herald_session={live}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let out = sfn(&app, Some(&live), "logout", &Body::Form(vec![])).await;
    let cleared = out.headers().get_all(SET_COOKIE).iter().any(|c| {
        c.to_str().unwrap().starts_with("herald_session=;")
            && c.to_str().unwrap().contains("Max-Age=0")
    });
    assert!(cleared, "{:?}", out.headers());
    assert_eq!(
        sfn(&app, Some(&live), "list_webhooks", &list())
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // The cookie is HttpOnly and SameSite=Lax; Secure only over HTTPS.
    let body = Body::Form(vec![
        ("email", "ana@example.com".into()),
        ("password", PASSWORD.into()),
        ("next", "/".into()),
    ]);
    let resp = sfn(&app, None, "login", &body).await;
    let set = resp.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax") && !set.contains("Secure"),
        "{set}"
    );
    let resp = client()
        .post(app.url("/sfn/login"))
        .header(ORIGIN, &app.base)
        .header("x-forwarded-proto", "https")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!(
            "email=ana%40example.com&password={}&next=%2F",
            PASSWORD.replace(' ', "+")
        ))
        .send()
        .await
        .unwrap();
    assert!(resp.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("; Secure"));
    app.stop().await;
}

fn sha256(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_setup_link_creates_the_first_admin_once() {
    let (url, dir) = crate::helpers::database(Backend::Sqlite, "setup")
        .await
        .unwrap();
    let app = spawn_with(crate::helpers::serve_args(&url), dir).await;
    let link = app
        .setup_link
        .clone()
        .expect("a setup link when no user exists");
    let token = link.split("token=").nth(1).unwrap().to_owned();
    assert!(
        link.starts_with(&format!("{}/setup?token=", app.base)),
        "{link}"
    );

    // Anonymous visitors land on the sign-in page, which points at the link.
    let home = client().get(app.url("/")).send().await.unwrap();
    assert_eq!(home.headers()[LOCATION], "/login");
    let page = client().get(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("Create the first admin"));

    let setup = |token: String, email: &'static str, password: &'static str| {
        let app = &app;
        async move {
            let body = Body::Form(vec![
                ("token", token),
                ("email", email.into()),
                ("password", password.into()),
                ("confirm", password.into()),
            ]);
            sfn(app, None, "complete_setup", &body).await
        }
    };
    let weak = setup(token.clone(), "first@example.com", "short").await;
    assert!(weak
        .text()
        .await
        .unwrap()
        .contains("at least 10 characters"));
    let done = setup(token.clone(), "first@example.com", PASSWORD).await;
    let cookie = session_cookie(&done).expect("signed in after setup");
    let me = sfn(&app, Some(&cookie), "signed_in_user", &Body::Form(vec![])).await;
    let me: Value = me.json().await.unwrap();
    assert_eq!(
        me,
        json!({
            "email": "first@example.com",
            "install_admin": true,
            "home": app.program,
            "programs": [{"id": app.program, "name": "Default program", "role": "admin"}]
        }),
        "the first admin manages the install"
    );
    // Used up: the same link, or any other, creates no second admin.
    let again = setup(token.clone(), "second@example.com", PASSWORD).await;
    assert!(session_cookie(&again).is_none());
    assert!(again.text().await.unwrap().contains("already been used"));
    let check = sfn(
        &app,
        None,
        "check_setup_token",
        &Body::Form(vec![("token", token)]),
    )
    .await;
    assert_eq!(check.text().await.unwrap(), "false");
    // A restart with a user in place prints no link.
    let args = crate::helpers::serve_args(&app.database_url);
    let restarted = server::startup::Application::build(&args).await.unwrap();
    assert!(restarted.setup_link().is_none());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_posts_are_refused_and_headers_lock_the_page_down() {
    let app = spawn_app(Backend::Sqlite, "csrf").await.unwrap();
    add_user(&app, "ana@example.com", Role::Admin).await;
    let cookie = signed_in(&app, "ana@example.com").await;
    let hook = app
        .create_webhook(json!({"name": "Csrf", "url": "http://127.0.0.1:9/hook", "event_types": ["user.created"]}))
        .await;
    for origin in [Some("http://evil.example"), None] {
        let mut req = client()
            .post(app.url("/sfn/delete_webhook"))
            .header(COOKIE, format!("herald_session={cookie}"))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!("id={}", hook["id"].as_str().unwrap()));
        if let Some(o) = origin {
            req = req.header(ORIGIN, o);
        }
        assert_eq!(
            req.send().await.unwrap().status(),
            StatusCode::FORBIDDEN,
            "{origin:?}"
        );
    }
    let (status, _) = app
        .get(&format!(
            "/api/v1/webhooks/{}",
            hook["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "the webhook is still there");

    let page = client()
        .get(app.url(&format!("/p/{}", app.program)))
        .header(COOKIE, format!("herald_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let headers = page.headers().clone();
    let csp = headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a nonce in the CSP")
        .to_owned();
    assert!(
        csp.contains("'wasm-unsafe-eval'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "same-origin");
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "the hydration script carries the nonce"
    );
    let other = client().get(app.url("/login")).send().await.unwrap();
    let other_csp = other.headers()["content-security-policy"].to_str().unwrap();
    assert!(!other_csp.contains(&nonce), "a fresh nonce per response");

    // Oversized bodies are refused on console routes as on the API.
    let big = "x".repeat(300 * 1024);
    let resp = client()
        .post(app.url("/sfn/login"))
        .header(ORIGIN, &app.base)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("email={big}&password=x&next=%2F"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    app.stop().await;
}

async fn secrets_are_sealed_at_rest_and_masked(backend: Backend) {
    let Some(app) = spawn_app(backend, "secrets at rest").await else {
        return;
    };
    let signing = "whsec_c2VjcmV0LXRoYXQtbXVzdC1uZXZlci1hcHBlYXItMQ==";
    let jwt = "whsec_and0LXNlY3JldC10aGF0LW11c3QtbmV2ZXItYXBwZWFyLTI=";
    let password = "basic-password-that-must-never-appear-3";
    let base = |name: &str, auth: Value| json!({"name": name, "url": "http://127.0.0.1:9/hook", "event_types": ["user.created"], "auth": auth});
    app.create_webhook(base(
        "Signed",
        json!({"kind": "signature", "secret": signing}),
    ))
    .await;
    app.create_webhook(base("Jwt", json!({"kind": "jwt", "secret": jwt})))
        .await;
    let basic = app
        .create_webhook(base(
            "Basic",
            json!({"kind": "basic", "username": "u", "password": password}),
        ))
        .await;
    assert!(basic.get("password").is_none() && !basic.to_string().contains(password));
    let (_, list) = app.get("/api/v1/webhooks").await;
    let listed = list.to_string();
    for plain in [signing, jwt, password] {
        assert!(!listed.contains(plain), "masked in lists");
    }
    let plains = [signing.as_bytes(), jwt.as_bytes(), password.as_bytes()];
    if let Some(path) = app.sqlite_path() {
        let mut bytes = Vec::new();
        for file in [path.clone(), format!("{path}-wal")] {
            bytes.extend(std::fs::read(&file).unwrap_or_default());
        }
        assert!(bytes.len() > 4096);
        for plain in plains {
            assert!(
                !bytes.windows(plain.len()).any(|w| w == plain),
                "plain secret in the SQLite files"
            );
        }
    } else {
        let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
        let dump: String = sqlx::query_scalar("SELECT string_agg(w::text, '\n') FROM webhooks w")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(dump.contains("Signed"));
        for plain in [signing, jwt, password] {
            assert!(!dump.contains(plain), "plain secret in PostgreSQL");
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_targets_are_refused_with_a_clear_message() {
    let (url, dir) = crate::helpers::database(Backend::Sqlite, "ssrf")
        .await
        .unwrap();
    let mut args = crate::helpers::serve_args(&url);
    args.allow_private_targets = false;
    let app = spawn_with(args, dir).await;
    for target in [
        "http://127.0.0.1/hook",
        "http://10.1.2.3/hook",
        "http://172.16.0.1/hook",
        "http://172.31.255.255/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://localhost:8080/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
    ] {
        let (status, body) = app
            .post("/api/v1/webhooks", json!({"name": format!("t {target}"), "url": target, "event_types": ["user.created"]}))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{target}: {body}");
        assert_eq!(body["error"]["field"], "url", "{target}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("private")
                || message.contains("not allowed")
                || message.contains("refused"),
            "{target}: {message}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_land_in_the_activity_log_under_who_made_them() {
    let app = spawn_app(Backend::Sqlite, "activity").await.unwrap();
    add_user(&app, "ana@example.com", Role::Admin).await;
    let cookie = signed_in(&app, "ana@example.com").await;
    let hook = app
        .create_webhook(json!({"name": "Logged", "url": "http://127.0.0.1:9/hook", "event_types": ["user.created"]}))
        .await;
    let id = hook["id"].as_str().unwrap().to_owned();
    let toggle = Body::Form(vec![("id", id.clone()), ("enabled", "false".into())]);
    assert_eq!(
        sfn(&app, Some(&cookie), "set_webhook_enabled", &toggle)
            .await
            .status(),
        StatusCode::OK
    );
    let rotate = Body::Form(vec![("id", id.clone())]);
    assert_eq!(
        sfn(&app, Some(&cookie), "rotate_webhook_secret", &rotate)
            .await
            .status(),
        StatusCode::OK
    );
    let key = sfn(
        &app,
        Some(&cookie),
        "create_api_key",
        &Body::Form(vec![("name", "platform".into())]),
    )
    .await;
    let key: Value = key.json().await.unwrap();
    assert!(key["key"].as_str().unwrap().starts_with("hk_"));
    let page = sfn(
        &app,
        Some(&cookie),
        "list_activity",
        &Body::Form(vec![("before", "".into())]),
    )
    .await;
    let rows: Vec<Value> = page.json().await.unwrap();
    let lines: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                r["actor"].as_str().unwrap(),
                r["action"].as_str().unwrap(),
                r["target"].as_str().unwrap(),
                r["detail"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            "ana@example.com created API key platform ".to_owned()
                + key["view"]["prefix"].as_str().unwrap()
                + " (admin)",
            "ana@example.com rotated secret of webhook Logged the old secret signs for 24 hours"
                .into(),
            "ana@example.com changed webhook Logged disabled".into(),
            "API key tests created webhook Logged ".into(),
            "command line created user ana@example.com Admin".into(),
        ]
    );
    // Revoking a key stops it at once.
    let plain = key["key"].as_str().unwrap();
    let ok = client()
        .get(app.url("/api/v1/webhooks"))
        .bearer_auth(plain)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let revoke = Body::Form(vec![("id", key["view"]["id"].as_str().unwrap().to_owned())]);
    assert_eq!(
        sfn(&app, Some(&cookie), "revoke_api_key", &revoke)
            .await
            .status(),
        StatusCode::OK
    );
    let refused = client()
        .get(app.url("/api/v1/webhooks"))
        .bearer_auth(plain)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

on_both_backends!(
    members_of_one_program_reach_nothing_of_another,
    sessions_expire_and_logout_ends_them,
    secrets_are_sealed_at_rest_and_masked
);

/// Select Webhook offers the program's newest webhooks, not thousands of them: past the limit it
/// says there are more (and the page tells the user to search by name), and the webhook already
/// chosen stays offered even when it is older than the newest ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_filter_offers_the_newest_and_the_one_chosen() {
    use futures::StreamExt;
    let app = spawn_app(Backend::Sqlite, "choices").await.unwrap();
    add_user(&app, "ana@example.com", Role::Viewer).await;
    let cookie = signed_in(&app, "ana@example.com").await;
    let limit = herald::domain::views::WebhookChoiceList::LIMIT as usize;
    let choices = |chosen: Option<String>| {
        let (app, cookie) = (&app, &cookie);
        async move {
            let body = Body::Form(chosen.into_iter().map(|c| ("chosen", c)).collect());
            let resp = sfn(app, Some(cookie), "webhook_choices", &body).await;
            assert_eq!(resp.status(), StatusCode::OK);
            resp.json::<Value>().await.unwrap()
        }
    };

    let first = app
        .create_webhook(json!({"name": "Oldest", "url": "http://127.0.0.1:9/hook", "event_types": ["user.created"]}))
        .await;
    let oldest = first["id"].as_str().unwrap().to_owned();
    let few = choices(None).await;
    assert_eq!(
        (few["items"].as_array().unwrap().len(), &few["more"]),
        (1, &json!(false))
    );
    assert_eq!(few["items"][0], json!({"id": oldest, "name": "Oldest"}));

    futures::stream::iter(0..limit)
        .for_each_concurrent(8, |i| {
            let app = &app;
            async move {
                app.create_webhook(
                    json!({"name": format!("Hook {i:03}"), "url": "http://127.0.0.1:9/hook",
                    "event_types": ["user.created"]}),
                )
                .await;
            }
        })
        .await;
    let many = choices(None).await;
    let items = many["items"].as_array().unwrap();
    assert_eq!((items.len(), &many["more"]), (limit, &json!(true)));
    assert!(
        items.iter().all(|w| w["id"] != json!(oldest)),
        "the oldest is offered"
    );
    let chosen = choices(Some(oldest.clone())).await;
    let items = chosen["items"].as_array().unwrap();
    assert_eq!(items.len(), limit + 1);
    assert!(
        items.iter().any(|w| w["id"] == json!(oldest)),
        "the chosen one is not offered"
    );

    let page = client()
        .get(app.url(&format!(
            "/p/{}/audit-logs?webhook_id={oldest}",
            app.program
        )))
        .header(COOKIE, format!("herald_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("search by name for the others"), "no hint");
    assert_eq!(
        html.matches("<option value=\"wh_").count(),
        limit + 1,
        "options"
    );
    assert!(
        html.contains(&format!("<option value=\"{oldest}\" selected")),
        "the chosen one is not selected"
    );
    app.stop().await;
}

/// Posts a form to server function `name` as a browser does without the wasm (or as the console's
/// in-place submit does): form-encoded, asking for HTML, from the page at `from`.
async fn form_post(
    app: &TestApp,
    cookie: Option<&str>,
    name: &str,
    from: &str,
    pairs: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = client()
        .post(app.url(&format!("/sfn/{name}")))
        .header(ORIGIN, &app.base)
        .header(reqwest::header::ACCEPT, "text/html,application/xhtml+xml")
        .header(reqwest::header::REFERER, app.url(from))
        .form(pairs);
    if let Some(c) = cookie {
        req = req.header(COOKIE, format!("herald_session={c}"));
    }
    req.send().await.unwrap()
}

/// Where a form post sent the browser, and the page found there.
async fn followed(cookie: Option<&str>, r: reqwest::Response) -> (String, String) {
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "a form is answered with a page"
    );
    let to = r.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let mut req = client().get(&to);
    if let Some(c) = cookie {
        req = req.header(COOKIE, format!("herald_session={c}"));
    }
    let page = req.send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "{to}");
    (to, page.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_forms_come_back_to_their_page_with_the_outcome() {
    let app = spawn_app(Backend::Sqlite, "plain-forms").await.unwrap();
    add_user(&app, "ana@example.com", Role::Admin).await;
    let settings = format!("/p/{}/settings", app.program);

    // A refused sign-in: back to the form with the message, not a 401 the browser would show.
    let r = form_post(
        &app,
        None,
        "login",
        "/login?next=%2Fsettings",
        &[
            ("next", "/settings"),
            ("email", "ana@example.com"),
            ("password", "wrong one"),
        ],
    )
    .await;
    let (to, page) = followed(None, r).await;
    assert!(
        to.contains("/login?next=%2Fsettings&__path=%2Fsfn%2Flogin&__err="),
        "{to}"
    );
    assert!(page.contains("E-mail or password is incorrect"), "{page}");

    // Anonymous, a form is sent to sign in rather than answered with JSON.
    let r = form_post(
        &app,
        None,
        "send_test_alert",
        &settings,
        &[("program", &app.program)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[reqwest::header::LOCATION], "/login");

    let cookie = signed_in(&app, "ana@example.com").await;
    let alerts = |email: &'static str, host: &'static str| {
        let mut pairs = vec![
            ("program", app.program.clone()),
            ("smtp_host", host.to_owned()),
            ("smtp_port", "2525".to_owned()),
            ("smtp_tls", "none".to_owned()),
            ("smtp_username", String::new()),
            ("smtp_password", String::new()),
            ("from", "herald@example.com".to_owned()),
            ("recipients", "ops@example.com".to_owned()),
            ("window_minutes", "15".to_owned()),
        ];
        if !email.is_empty() {
            pairs.push(("email_enabled", email.to_owned()));
        }
        pairs
    };

    // Refused: the page again, with the message beside its field.
    let fields = alerts("true", "");
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = form_post(
        &app,
        Some(&cookie),
        "save_alert_settings",
        &settings,
        &pairs,
    )
    .await;
    let (to, page) = followed(Some(&cookie), r).await;
    assert!(
        to.contains("__path=%2Fsfn%2Fsave_alert_settings&__err="),
        "{to}"
    );
    assert!(page.contains("SMTP host is required"), "{page}");
    assert!(!page.contains("Alert settings saved."));

    // Saved: the page again, saying so; the earlier error is gone from the URL.
    let fields = alerts("", "127.0.0.1");
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let from = to.strip_prefix(&app.base).unwrap().to_owned();
    let r = form_post(&app, Some(&cookie), "save_alert_settings", &from, &pairs).await;
    let (to, page) = followed(Some(&cookie), r).await;
    assert!(
        to.contains("__done=%2Fsfn%2Fsave_alert_settings&__ok="),
        "{to}"
    );
    assert!(!to.contains("__err"), "{to}");
    assert!(page.contains("Alert settings saved."), "{page}");
    assert!(!page.contains("SMTP host is required"));
    assert!(
        page.contains("value=\"127.0.0.1\""),
        "the saved settings are shown"
    );

    // A later refusal is shown alone: the earlier success does not stay on the page.
    let from = to.strip_prefix(&app.base).unwrap().to_owned();
    let fields = alerts("true", "");
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = form_post(&app, Some(&cookie), "save_alert_settings", &from, &pairs).await;
    let (_, page) = followed(Some(&cookie), r).await;
    assert!(page.contains("SMTP host is required"));
    assert!(!page.contains("Alert settings saved."));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_pages_are_gzipped_for_browsers_that_ask() {
    use std::io::Read;
    let app = spawn_app(Backend::Sqlite, "gzip").await.unwrap();
    add_user(&app, "ana@example.com", Role::Admin).await;
    let cookie = signed_in(&app, "ana@example.com").await;
    let page = |encoding: Option<&'static str>| {
        let mut req = client()
            .get(app.url(&format!("/p/{}", app.program)))
            .header(COOKIE, format!("herald_session={cookie}"));
        if let Some(e) = encoding {
            req = req.header(reqwest::header::ACCEPT_ENCODING, e);
        }
        req.send()
    };

    let plain = page(None).await.unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
    assert!(plain
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .is_none());
    let html = plain.text().await.unwrap();
    assert!(html.contains("<h1>Webhooks</h1>"), "{html}");

    let zipped = page(Some("gzip, deflate, br")).await.unwrap();
    assert_eq!(zipped.status(), StatusCode::OK);
    assert_eq!(zipped.headers()[reqwest::header::CONTENT_ENCODING], "gzip");
    assert!(zipped.headers()[reqwest::header::VARY]
        .to_str()
        .unwrap()
        .to_ascii_lowercase()
        .contains("accept-encoding"));
    let bytes = zipped.bytes().await.unwrap();
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut unzipped)
        .unwrap();
    assert!(unzipped.contains("<h1>Webhooks</h1>"), "{unzipped}");
    assert!(
        bytes.len() * 2 < unzipped.len(),
        "{} of {}",
        bytes.len(),
        unzipped.len()
    );

    // A CSV download stays plain (Chromium cancelled the streamed file once it was gzipped).
    let csv = client()
        .get(app.url(&format!("/p/{}/audit-logs.csv", app.program)))
        .header(COOKIE, format!("herald_session={cookie}"))
        .header(reqwest::header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .is_none());
    assert!(csv.text().await.unwrap().starts_with("attempt_id,"));
    app.stop().await;
}

/// Every way into a program page that a person may have bookmarked or typed (without the program
/// prefix, or the Webhooks list as `…/webhooks`) leads to that page of their program, never to
/// "Page not found".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookmarks_without_the_program_lead_to_a_page_that_exists() {
    let app = spawn_app(Backend::Sqlite, "bookmarks").await.unwrap();
    add_user(&app, "ana@example.com", Role::Admin).await;
    let cookie = format!(
        "herald_session={}",
        signed_in(&app, "ana@example.com").await
    );
    let program = format!("/p/{}", app.program);
    let mut asked: Vec<String> = app::api::PROGRAM_PAGES
        .iter()
        .map(|page| (*page).to_owned())
        .collect();
    asked.extend(["/".to_owned(), format!("{program}/webhooks")]);
    let get = |path: &str| client().get(app.url(path)).header(COOKIE, &cookie).send();
    for path in asked {
        let first = get(&path).await.unwrap();
        assert_eq!(first.status(), StatusCode::SEE_OTHER, "{path}");
        let to = first.headers()[LOCATION].to_str().unwrap().to_owned();
        assert!(to.starts_with(&program), "{path} → {to}");
        let page = get(&to).await.unwrap();
        assert_eq!(page.status(), StatusCode::OK, "{path} → {to}");
        let html = page.text().await.unwrap();
        assert!(!html.contains("Page not found"), "{path} → {to}");
    }
    app.stop().await;
}
