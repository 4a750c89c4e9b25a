//! REST for API keys and members, over real HTTP on 127.0.0.1 against both backends: a key made
//! through the API works at once with its scope, a revoked one stops at once, a key cannot revoke
//! itself, and members are added and removed with each wrong field named.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        key: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

async fn keys_are_made_used_and_revoked_over_the_api(backend: Backend) {
    let Some(s) = setup(backend, "accounts_keys").await else {
        return;
    };
    let (base, admin) = s.serve_api().await;
    let api = Api {
        base,
        http: reqwest::Client::new(),
    };
    let (status, list) = api.call(&admin, Method::GET, "/api-keys", None).await;
    assert_eq!(status, 200, "{list}");
    let own = list["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    let (status, made) = api
        .call(
            &admin,
            Method::POST,
            "/api-keys",
            Some(json!({"name": "platform", "scope": "ingest"})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["view"]["scope"], "ingest");
    let ingest = made["key"].as_str().unwrap().to_owned();
    let ingest_id = made["view"]["id"].as_str().unwrap().to_owned();
    let event = json!({"event_type": "points.awarded", "data": {"user_id": "u_1", "points": 5}});
    let (status, _) = api
        .call(&ingest, Method::POST, "/events", Some(event.clone()))
        .await;
    assert_eq!(status, 202);
    let (status, _) = api.call(&ingest, Method::GET, "/api-keys", None).await;
    assert_eq!(status, 403, "an ingest key manages nothing");

    let (status, err) = api
        .call(
            &admin,
            Method::POST,
            "/api-keys",
            Some(json!({"name": "  "})),
        )
        .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("name")),
        "{err}"
    );

    let (status, err) = api
        .call(&admin, Method::DELETE, &format!("/api-keys/{own}"), None)
        .await;
    assert_eq!(status, 409, "{err}");
    let (status, _) = api
        .call(
            &admin,
            Method::DELETE,
            &format!("/api-keys/{ingest_id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = api
        .call(&ingest, Method::POST, "/events", Some(event))
        .await;
    assert_eq!(status, 401, "revoked at once");
    let (status, _) = api
        .call(
            &admin,
            Method::DELETE,
            &format!("/api-keys/{ingest_id}"),
            None,
        )
        .await;
    assert_eq!(status, 404, "already revoked");
    let (_, list) = api.call(&admin, Method::GET, "/api-keys", None).await;
    let revoked: Vec<&Value> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| !k["revoked_at"].is_null())
        .collect();
    assert_eq!(revoked.len(), 1);
    assert!(
        !list.to_string().contains(&ingest),
        "keys themselves are never listed"
    );
}

async fn members_are_added_and_removed_over_the_api(backend: Backend) {
    let Some(s) = setup(backend, "accounts_users").await else {
        return;
    };
    let (base, admin) = s.serve_api().await;
    let api = Api {
        base,
        http: reqwest::Client::new(),
    };
    let (status, added) = api
        .call(
            &admin,
            Method::POST,
            "/users",
            Some(json!({"email": "ops@example.com", "role": "viewer", "password": "a long passphrase"})),
        )
        .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(
        (added["email"].as_str(), added["role"].as_str()),
        (Some("ops@example.com"), Some("viewer"))
    );
    let id = added["id"].as_str().unwrap().to_owned();
    let (status, list) = api.call(&admin, Method::GET, "/users", None).await;
    assert_eq!(status, 200);
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["id"] == id.as_str()));

    for (body, field) in [
        (
            json!({"email": "not an address", "role": "viewer", "password": "a long passphrase"}),
            "email",
        ),
        (
            json!({"email": "new@example.com", "role": "admin", "password": "short"}),
            "password",
        ),
    ] {
        let (status, err) = api.call(&admin, Method::POST, "/users", Some(body)).await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some(field)),
            "{err}"
        );
    }
    let (status, _) = api
        .call(
            &admin,
            Method::POST,
            "/users",
            Some(json!({"email": "x@example.com", "role": "owner"})),
        )
        .await;
    assert_eq!(status, 422, "an unknown role is refused");

    let (status, _) = api
        .call(&admin, Method::DELETE, &format!("/users/{id}"), None)
        .await;
    assert_eq!(status, 204);
    let (_, list) = api.call(&admin, Method::GET, "/users", None).await;
    assert!(!list["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["id"] == id.as_str()));
    let (status, _) = api
        .call(&admin, Method::DELETE, &format!("/users/{id}"), None)
        .await;
    assert_eq!(status, 404);
}

on_both_backends!(
    keys_are_made_used_and_revoked_over_the_api,
    members_are_added_and_removed_over_the_api,
);
