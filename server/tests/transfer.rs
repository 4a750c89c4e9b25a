//! Export and import of webhook configurations between programs, through the engine and the real
//! store on both backends: secrets only when sealed with a passphrase, a preview that says what
//! will happen, and an import that writes all of it or nothing.

use crate::helpers::*;
use herald::auth::{Access, Actor, InstallAdmin};
use herald::delivery::{Engine, EngineError};
use herald::domain::settings::WebhookDraft;
use herald::domain::transfer::{ImportAction, OnConflict, ProgramExport};
use herald::store::WebhookQuery;
use serde_json::json;

const PASSPHRASE: &str = "a long export passphrase";

fn draft(value: serde_json::Value) -> WebhookDraft {
    serde_json::from_value(value).unwrap()
}

/// Settings as the edit wizard shows them, by name (ids and secrets left out).
async fn configs(engine: &Engine, actor: &Actor) -> Vec<WebhookDraft> {
    let mut hooks = engine
        .store()
        .list_webhooks(&actor.program, &WebhookQuery::default())
        .await
        .unwrap();
    hooks.sort_by_key(|w| w.record.name.as_str().to_owned());
    hooks
        .iter()
        .map(herald::delivery::webhooks::draft_of)
        .collect()
}

fn actions(plan: &herald::domain::transfer::ImportPlan) -> Vec<(String, ImportAction)> {
    plan.items
        .iter()
        .map(|i| (i.name.clone(), i.action))
        .collect()
}

/// The document as it travels (a file, a paste): through JSON text and back.
fn travelled(doc: &ProgramExport) -> ProgramExport {
    serde_json::from_str(&serde_json::to_string_pretty(doc).unwrap()).unwrap()
}

async fn a_tested_configuration_moves_to_another_program(backend: Backend) {
    let Some((url, _dir)) = database(backend, "transfer").await else {
        return;
    };
    let (engine, _clock) = manual_engine(&url).await;
    let access = Access::new(
        engine.store().clone(),
        Default::default(),
        Default::default(),
    );
    let a = Actor::command_line(engine.store().default_program().await.unwrap());
    let b = Actor::command_line(
        access
            .create_program(&InstallAdmin::command_line(), "Gold Club")
            .await
            .unwrap()
            .id,
    );
    let signed = engine
        .create_webhook(&a, &draft(json!({"name": "Points sink", "url": "http://127.0.0.1:9/points", "event_types": ["points.awarded"]})))
        .await
        .unwrap();
    let secret = signed.secret.clone().unwrap();
    engine
        .create_webhook(&a, &draft(json!({"name": "Basic hook", "url": "http://127.0.0.1:9/basic", "event_types": ["user.created"], "auth": {"kind": "basic", "username": "crm", "password": "basic password 1"}})))
        .await
        .unwrap();
    engine
        .create_webhook(&a, &draft(json!({
            "name": "Plain hook", "url": "http://127.0.0.1:9/plain", "event_types": ["reward.redeemed"],
            "auth": {"kind": "none"}, "filter": [{"path": "data.points", "op": "gt", "value": 100}],
            "retry": {"attempts": 3, "delay_seconds": 5, "backoff": "fixed", "timeout_seconds": 4},
            "rate_limit_per_second": 20, "sandbox": true
        })))
        .await
        .unwrap();

    // Without a passphrase no secret leaves the program.
    let bare = travelled(
        &engine
            .export_program(&a, "Default program", None)
            .await
            .unwrap(),
    );
    let text = serde_json::to_string(&bare).unwrap();
    assert!(bare.sealed_secrets.is_none());
    assert!(
        !text.contains(&secret) && !text.contains("basic password 1"),
        "{text}"
    );
    assert_eq!(bare.webhooks.len(), 3);

    // Imported without secrets: the signed one gets a new secret, the Basic one cannot come (its
    // password stayed behind), so nothing is imported at all.
    let plan = engine
        .plan_import(&b, &bare, OnConflict::Skip, None)
        .await
        .unwrap();
    assert_eq!(
        actions(&plan),
        vec![
            ("Basic hook".into(), ImportAction::Invalid),
            ("Plain hook".into(), ImportAction::Create),
            ("Points sink".into(), ImportAction::Create),
        ]
    );
    assert!(
        plan.items[0].detail.contains("password"),
        "{:?}",
        plan.items[0]
    );
    let refused = engine.apply_import(&b, &bare, OnConflict::Skip, None).await;
    assert!(
        matches!(refused, Err(EngineError::Refused(_))),
        "{refused:?}"
    );
    assert!(
        configs(&engine, &b).await.is_empty(),
        "nothing half-imported"
    );

    // Sealing needs a real passphrase; opening needs the same one.
    let short = engine
        .export_program(&a, "Default program", Some("short"))
        .await;
    assert!(matches!(short, Err(EngineError::Validation(ref v)) if v.field == "passphrase"));
    let sealed = travelled(
        &engine
            .export_program(&a, "Default program", Some(PASSPHRASE))
            .await
            .unwrap(),
    );
    let text = serde_json::to_string(&sealed).unwrap();
    assert!(
        !text.contains(&secret) && !text.contains("basic password 1"),
        "sealed, not plain"
    );
    let wrong = engine
        .plan_import(&b, &sealed, OnConflict::Skip, Some("not the passphrase"))
        .await;
    assert!(matches!(wrong, Err(EngineError::Validation(ref v)) if v.field == "passphrase"));

    // With it: everything is created, settings and secrets as they were.
    let plan = engine
        .apply_import(&b, &sealed, OnConflict::Skip, Some(PASSPHRASE))
        .await
        .unwrap();
    assert!(plan.applied);
    assert!(
        plan.items.iter().all(|i| i.action == ImportAction::Create),
        "{plan:?}"
    );
    assert!(plan.secrets.is_empty(), "imported secrets are not new ones");
    assert_eq!(configs(&engine, &b).await, configs(&engine, &a).await);
    let sink_b = engine
        .store()
        .list_webhooks(&b.program, &WebhookQuery::default())
        .await
        .unwrap()
        .into_iter()
        .find(|w| w.record.name.as_str() == "Points sink")
        .unwrap();
    assert_eq!(
        engine.reveal_secret(&b, &sink_b.record.id).await.unwrap(),
        secret,
        "receivers keep verifying with the secret they have"
    );

    // Again: names are taken. Skip leaves them; Update finds nothing to change.
    let plan = engine
        .plan_import(&b, &bare, OnConflict::Skip, None)
        .await
        .unwrap();
    assert!(
        plan.items.iter().all(|i| i.action == ImportAction::Skip),
        "{plan:?}"
    );
    let plan = engine
        .plan_import(&b, &bare, OnConflict::Update, None)
        .await
        .unwrap();
    assert!(
        plan.items
            .iter()
            .all(|i| i.action == ImportAction::Unchanged),
        "{plan:?}"
    );

    // A change made in A travels as an update naming what changed; B's own Enabled switch stays.
    let plain_a = engine
        .store()
        .list_webhooks(&a.program, &WebhookQuery::default())
        .await
        .unwrap()
        .into_iter()
        .find(|w| w.record.name.as_str() == "Plain hook")
        .unwrap();
    let patch = herald::domain::settings::WebhookPatch {
        url: Some("http://127.0.0.1:9/plain-v2".into()),
        ..Default::default()
    };
    engine
        .update_webhook(&a, &plain_a.record.id, patch)
        .await
        .unwrap();
    let plain_b = configs(&engine, &b).await.remove(1);
    assert_eq!(plain_b.name, "Plain hook");
    let plain_b_id = engine
        .store()
        .list_webhooks(&b.program, &WebhookQuery::default())
        .await
        .unwrap()
        .into_iter()
        .find(|w| w.record.name.as_str() == "Plain hook")
        .unwrap()
        .record
        .id;
    let off = herald::domain::settings::WebhookPatch {
        enabled: Some(false),
        ..Default::default()
    };
    engine.update_webhook(&b, &plain_b_id, off).await.unwrap();
    let changed = travelled(
        &engine
            .export_program(&a, "Default program", None)
            .await
            .unwrap(),
    );
    let plan = engine
        .apply_import(&b, &changed, OnConflict::Update, None)
        .await
        .unwrap();
    assert_eq!(
        plan.items
            .iter()
            .map(|i| (i.name.as_str(), i.action, i.detail.as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("Basic hook", ImportAction::Unchanged, ""),
            ("Plain hook", ImportAction::Update, "url"),
            ("Points sink", ImportAction::Unchanged, ""),
        ]
    );
    let plain_b = configs(&engine, &b).await.remove(1);
    assert_eq!(plain_b.url, "http://127.0.0.1:9/plain-v2");
    assert!(!plain_b.enabled, "an import does not switch webhooks on");

    // Documents that are not ours, or name a webhook twice, are refused before anything happens.
    let mut foreign = bare.clone();
    foreign.format = "something.else".into();
    let err = engine
        .plan_import(&b, &foreign, OnConflict::Skip, None)
        .await;
    assert!(matches!(err, Err(EngineError::Validation(ref v)) if v.field == "format"));
    let mut future = bare.clone();
    future.version = 99;
    let err = engine
        .plan_import(&b, &future, OnConflict::Skip, None)
        .await;
    assert!(matches!(err, Err(EngineError::Validation(ref v)) if v.field == "version"));
    let mut twice = bare.clone();
    twice.webhooks.retain(|w| w.name != "Basic hook");
    let mut copy = twice.webhooks[0].clone();
    copy.name = "NEW HOOK".into();
    twice.webhooks.push(copy.clone());
    copy.name = "new hook".into();
    twice.webhooks.push(copy);
    let plan = engine
        .plan_import(&b, &twice, OnConflict::Skip, None)
        .await
        .unwrap();
    assert_eq!(plan.items[3].action, ImportAction::Invalid, "{plan:?}");
    let before = configs(&engine, &b).await;
    assert!(engine
        .apply_import(&b, &twice, OnConflict::Skip, None)
        .await
        .is_err());
    assert_eq!(configs(&engine, &b).await, before);
}

/// The same through the REST API over real HTTP: export with A's key (no passphrase: no secrets; with a
/// passphrase: sealed), preview and import with B's key, and a broken document refused by name.
async fn export_and_import_over_the_rest_api(backend: Backend) {
    let Some(app) = spawn_app(backend, "transfer rest").await else {
        return;
    };
    let store = herald::store::connect(&app.database_url).await.unwrap();
    let access = Access::new(store.clone(), Default::default(), Default::default());
    let b = access
        .create_program(&InstallAdmin::command_line(), "Silver Club")
        .await
        .unwrap();
    let (key_b, _) = access
        .create_api_key(
            &Actor::command_line(b.id.clone()),
            "b admin",
            herald::domain::account::KeyScope::Admin,
        )
        .await
        .unwrap();
    let created = app
        .create_webhook(json!({"name": "CRM", "url": "http://127.0.0.1:9/crm", "event_types": ["points.awarded"]}))
        .await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    let client = reqwest::Client::new();
    let call = |path: &str, key: &str, body: Option<serde_json::Value>| {
        let mut req = client.post(app.url(path)).bearer_auth(key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<serde_json::Value>().await.unwrap())
        }
    };

    let (status, bare) = call("/api/v1/program/export", &app.key, Some(json!({}))).await;
    assert_eq!(status, 200, "{bare}");
    assert_eq!(bare["format"], "herald.program-export");
    assert_eq!(bare["webhooks"][0]["name"], "CRM");
    assert!(bare.get("sealed_secrets").is_none(), "{bare}");
    assert!(!bare.to_string().contains(&secret));
    let (status, short) = call(
        "/api/v1/program/export",
        &app.key,
        Some(json!({"passphrase": "short"})),
    )
    .await;
    assert_eq!(
        (status, short["error"]["field"].as_str()),
        (422, Some("passphrase")),
        "{short}"
    );
    let (status, sealed) = call(
        "/api/v1/program/export",
        &app.key,
        Some(json!({"passphrase": PASSPHRASE})),
    )
    .await;
    assert_eq!(status, 200, "{sealed}");
    assert!(!sealed.to_string().contains(&secret), "sealed, never plain");

    let body = json!({"document": sealed, "passphrase": PASSPHRASE});
    let (status, plan) = call("/api/v1/program/import/preview", &key_b, Some(body.clone())).await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["items"][0]["action"], "create");
    assert_eq!(plan["applied"], false);
    let listed = store
        .list_webhooks(&b.id, &WebhookQuery::default())
        .await
        .unwrap();
    assert!(listed.is_empty(), "a preview writes nothing");
    let (status, done) = call("/api/v1/program/import", &key_b, Some(body.clone())).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["applied"], true);
    let listed = store
        .list_webhooks(&b.id, &WebhookQuery::default())
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].record.name.as_str(), "CRM");
    // Again: the name is taken now, and `on_conflict` defaults to skip.
    let (_, again) = call("/api/v1/program/import/preview", &key_b, Some(body)).await;
    assert_eq!(again["items"][0]["action"], "skip", "{again}");
    // Not an export document: refused, nothing written.
    let (status, err) = call(
        "/api/v1/program/import",
        &key_b,
        Some(json!({"document": {"format": "x"}})),
    )
    .await;
    assert!((400..500).contains(&status), "{status} {err}");
    assert_eq!(
        store
            .list_webhooks(&b.id, &WebhookQuery::default())
            .await
            .unwrap()
            .len(),
        1
    );
    app.stop().await;
}

on_both_backends!(
    a_tested_configuration_moves_to_another_program,
    export_and_import_over_the_rest_api,
);
