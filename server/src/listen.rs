//! `herald listen`: a local receiver for integration work. It answers every request on
//! 127.0.0.1, checks its authentication (Standard Webhooks signature, Herald's JWT, an HMAC header
//! or Basic), prints
//! what arrived (event type, id, time, verified or why not, the body as indented JSON) and answers
//! 200, or forwards the request to a local URL and relays that answer.

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use clap::Args;
use herald::delivery::sign;
use herald::domain::webhook::SigningSecret;
use std::sync::Arc;

#[derive(Debug, Clone, Args)]
pub struct ListenArgs {
    /// A webhook's signing secret (`whsec_…`) to verify `webhook-signature` with; give it twice
    /// during a rotation. With `--jwt`, the secret the JWT is signed with.
    #[arg(long, env = "HERALD_LISTEN_SECRET", hide_env_values = true)]
    pub secret: Vec<String>,
    /// The webhook uses JWT authentication (`Authorization: Bearer …`) rather than signatures.
    #[arg(long, default_value_t = false)]
    pub jwt: bool,
    /// The webhook uses the `hmac` method: its hex HMAC-SHA256 of the body arrives in this header
    /// (e.g. `X-Incentable-Signature`), keyed with `--secret`.
    #[arg(long)]
    pub hmac_header: Option<String>,
    /// The webhook uses Basic authentication with these credentials (`user:password`).
    #[arg(long, env = "HERALD_LISTEN_BASIC", hide_env_values = true)]
    pub basic: Option<String>,
    /// Port on 127.0.0.1 to listen on (0: any free port, printed at start).
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
    /// Forward each request (body and headers) to this URL and answer with its status and body.
    #[arg(long)]
    pub forward: Option<url::Url>,
}

enum Check {
    Signature(Vec<SigningSecret>),
    Jwt(SigningSecret),
    Hmac(SigningSecret, String),
    Basic(String, String),
    Nothing,
}

struct Listener {
    check: Check,
    forward: Option<url::Url>,
    client: reqwest::Client,
}

pub async fn run(args: ListenArgs) -> anyhow::Result<()> {
    let secrets = args
        .secret
        .iter()
        .map(|s| SigningSecret::parse(s).map_err(|e| anyhow::anyhow!("--secret: {}", e.message)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let check = match (&args.basic, args.jwt, secrets.is_empty()) {
        _ if args.hmac_header.is_some() => {
            let header = args
                .hmac_header
                .clone()
                .unwrap_or_default()
                .to_ascii_lowercase();
            let secret = secrets
                .first()
                .context("--hmac-header needs the secret: --secret whsec_…")?;
            Check::Hmac(secret.clone(), header)
        }
        (Some(pair), _, _) => {
            let (user, password) = pair
                .split_once(':')
                .context("--basic takes user:password")?;
            Check::Basic(user.to_owned(), password.to_owned())
        }
        (None, true, false) => Check::Jwt(secrets[0].clone()),
        (None, true, true) => anyhow::bail!("--jwt needs the secret: --secret whsec_…"),
        (None, false, false) => Check::Signature(secrets),
        (None, false, true) => Check::Nothing,
    };
    let state = Arc::new(Listener {
        check,
        forward: args.forward.clone(),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()?,
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("listening on 127.0.0.1:{}", args.port))?;
    let addr = listener.local_addr()?;
    println!("herald listen: waiting for webhooks on http://{addr}/ (any path)");
    match &args.forward {
        Some(to) => println!("               forwarding each one to {to}"),
        None => println!("               answering 200 to each one"),
    }
    let app = Router::new().fallback(receive).with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// "verified …" or "NOT verified: why".
fn verdict(check: &Check, headers: &HeaderMap, body: &[u8]) -> String {
    let now = chrono::Utc::now().timestamp();
    let outcome = match check {
        Check::Nothing => return "not checked (start with --secret to verify signatures)".into(),
        Check::Signature(secrets) => sign::verify_standard(
            secrets,
            header(headers, "webhook-id"),
            header(headers, "webhook-timestamp"),
            header(headers, "webhook-signature"),
            body,
            now,
        )
        .map(|i| format!("signature verified (secret {})", i + 1)),
        Check::Jwt(secret) => match header(headers, "authorization").strip_prefix("Bearer ") {
            Some(token) => sign::verify_jwt(secret, token, body, now)
                .map(|sub| format!("JWT verified (sub {sub})")),
            None => Err("no Authorization: Bearer token".into()),
        },
        Check::Hmac(secret, name) => sign::verify_hex_hmac(secret, header(headers, name), body)
            .map(|()| format!("HMAC in {name} verified")),
        Check::Basic(user, password) => {
            sign::verify_basic(header(headers, "authorization"), user, password)
                .map(|()| format!("Basic credentials of {user} verified"))
        }
    };
    outcome.unwrap_or_else(|why| format!("NOT verified: {why}"))
}

async fn receive(
    State(state): State<Arc<Listener>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let verdict = verdict(&state.check, &headers, &body);
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v[name].as_str())
            .unwrap_or("?")
            .to_owned()
    };
    let pretty = match &parsed {
        Some(v) => serde_json::to_string_pretty(v).unwrap_or_default(),
        None => String::from_utf8_lossy(&body).into_owned(),
    };
    println!(
        "\n{method} {uri}  {}  id {}  at {}\n  {verdict}\n{pretty}",
        field("event_type"),
        header(&headers, "webhook-id"),
        field("event_timestamp"),
    );
    let signature_header = match &state.check {
        Check::Hmac(_, name) => name.as_str(),
        _ => "",
    };
    let Some(to) = &state.forward else {
        return (StatusCode::OK, "ok").into_response();
    };
    let mut request = state.client.post(to.clone()).body(body.to_vec());
    for (name, value) in &headers {
        let keep = name.as_str().starts_with("webhook-")
            || name.as_str() == signature_header
            || matches!(
                name.as_str(),
                "content-type" | "authorization" | "user-agent"
            );
        if keep {
            request = request.header(name.as_str(), value.as_bytes());
        }
    }
    match request.send().await {
        Ok(answer) => {
            let status =
                StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let text = answer.bytes().await.unwrap_or_default();
            println!("  forwarded to {to}: {status}");
            (status, text).into_response()
        }
        Err(e) => {
            println!("  forwarding to {to} failed: {e}");
            (StatusCode::BAD_GATEWAY, format!("forwarding failed: {e}")).into_response()
        }
    }
}
