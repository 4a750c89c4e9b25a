//! One HTTP request to one endpoint: build it (envelope, headers, auth), send it over the shared
//! client with the webhook's timeout, and describe what happened as an audit-log row. Deliveries,
//! retries, replays, Send Test and Verify all go through `attempt`, so what a receiver sees cannot
//! differ between them.

use super::secrets::WebhookSecrets;
use super::sign;
use crate::domain::delivery::{AttemptStatus, Trigger};
use crate::domain::event::EventType;
use crate::domain::headers::StoredHeader;
use crate::domain::ids::EventId;
use crate::domain::ids::{AttemptId, DeliveryId, ProgramId, WebhookId};
use crate::domain::webhook::AuthKind;
use crate::store::NewAttempt;
use chrono::{DateTime, Utc};
use std::time::{Duration, Instant};

/// How much of a response body the audit log keeps.
pub const RESPONSE_EXCERPT_BYTES: usize = 4096;

/// How much of a response's headers the audit log keeps (names and values together). A receiver
/// may answer with a hundred headers of several KiB each, and every retry would store them again.
pub const RESPONSE_HEADERS_BYTES: usize = 8192;

/// The longest header value the audit log keeps whole; a longer one is cut with `…`.
pub const RESPONSE_HEADER_VALUE_BYTES: usize = 1024;

/// The entry that says how many of a response's headers were left out.
pub const OMITTED_HEADERS: &str = "x-herald-omitted";

/// What an attempt is about: the webhook's side and the event's side of a request.
pub struct Target<'a> {
    pub guard: super::guard::GuardPolicy,
    /// Why this request must not be sent at all (e.g. its secrets could not be opened); the
    /// attempt is recorded as a failure with this reason.
    pub blocked: Option<String>,
    pub program_id: &'a ProgramId,
    pub webhook_id: &'a WebhookId,
    pub webhook_name: &'a str,
    /// Parsed once, where the webhook is read (see `Webhook::target`).
    pub url: &'a url::Url,
    pub auth_kind: AuthKind,
    pub auth_param: Option<&'a str>,
    pub secrets: &'a WebhookSecrets,
    pub timeout: Duration,
    pub sandbox: bool,
    /// Custom headers, sent after Herald's own.
    pub custom: Vec<SentHeader>,
}

/// A custom header with its value in plain text (a secret one only while it is being sent).
pub struct SentHeader {
    /// Lower-cased, as it goes on the wire.
    pub name: String,
    pub value: String,
    pub secret: bool,
}

/// A webhook's custom headers with their values: plain ones as stored, secret ones from its
/// opened secrets (one whose value is missing there is left out rather than sent empty).
pub fn custom_headers(stored: &[StoredHeader], secrets: &WebhookSecrets) -> Vec<SentHeader> {
    stored
        .iter()
        .filter_map(|h| {
            let value = match (&h.value, h.secret) {
                (Some(v), false) => v.clone(),
                _ => secrets.header(&h.name)?.to_owned(),
            };
            Some(SentHeader {
                name: h.name.to_ascii_lowercase(),
                value,
                secret: h.secret,
            })
        })
        .collect()
}

pub struct Message<'a> {
    /// `webhook-id`: the event id, stable across retries.
    pub id: &'a EventId,
    pub event_type: &'a EventType,
    pub body: &'a str,
    pub delivery_id: Option<&'a DeliveryId>,
    pub attempt: i64,
    pub trigger: Trigger,
}

/// An attempt's audit row, plus what retry scheduling needs from the response.
pub struct Attempted {
    pub row: NewAttempt,
    pub retry_after: Option<String>,
}

impl Attempted {
    pub fn succeeded(&self) -> bool {
        self.row.status != AttemptStatus::Failure
    }
}

/// Builds the request headers, in the order they are sent. Secrets in them are redacted by
/// `redact` before anything is stored.
pub fn headers(
    target: &Target<'_>,
    msg: &Message<'_>,
    attempt_id: &AttemptId,
    now: DateTime<Utc>,
) -> Vec<(String, String)> {
    let ts = now.timestamp();
    let mut h = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        (
            "user-agent".to_owned(),
            concat!("Herald/", env!("CARGO_PKG_VERSION")).to_owned(),
        ),
        ("webhook-id".to_owned(), msg.id.to_string()),
        ("webhook-timestamp".to_owned(), ts.to_string()),
    ];
    match target.auth_kind {
        AuthKind::Signature => {
            let active = target.secrets.active(now);
            if !active.is_empty() {
                h.push((
                    "webhook-signature".to_owned(),
                    sign::standard_signature(&active, msg.id.as_str(), ts, msg.body),
                ));
            }
        }
        AuthKind::Jwt => {
            if let Some(secret) = target.secrets.current() {
                let token = sign::jwt(secret, attempt_id.as_str(), msg.id.as_str(), ts, msg.body);
                h.push(("authorization".to_owned(), format!("Bearer {token}")));
            }
        }
        AuthKind::Hmac => {
            if let (Some(secret), Some(header)) = (target.secrets.current(), target.auth_param) {
                h.push((
                    header.to_ascii_lowercase(),
                    sign::hex_hmac(secret, msg.body),
                ));
            }
        }
        AuthKind::Basic => {
            let user = target.auth_param.unwrap_or_default();
            let password = target.secrets.basic_password.as_deref().unwrap_or_default();
            h.push(("authorization".to_owned(), sign::basic(user, password)));
        }
        AuthKind::None => {}
    }
    h.extend(
        target
            .custom
            .iter()
            .map(|c| (c.name.clone(), c.value.clone())),
    );
    h
}

/// Headers as the audit log shows them: credentials replaced by their scheme, secret custom
/// headers by a mark.
pub fn redact(headers: &[(String, String)], custom: &[SentHeader]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            if custom.iter().any(|c| c.secret && c.name == *k) {
                (k.clone(), "[redacted]".to_owned())
            } else if k == "authorization" {
                let scheme = v.split(' ').next().unwrap_or_default();
                (k.clone(), format!("{scheme} [redacted]"))
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect()
}

/// Makes (or, in sandbox mode, only records) one request.
pub async fn attempt(
    client: &reqwest::Client,
    target: &Target<'_>,
    msg: &Message<'_>,
    clock: &dyn super::clock::Clock,
) -> Attempted {
    let id = AttemptId::generate();
    let now = clock.now();
    let headers = headers(target, msg, &id, now);
    let mut row = NewAttempt {
        id,
        program_id: target.program_id.clone(),
        webhook_id: target.webhook_id.clone(),
        webhook_name: target.webhook_name.to_owned(),
        delivery_id: msg.delivery_id.cloned(),
        event_id: msg.id.clone(),
        event_accepted_at: None,
        event_type: msg.event_type.clone(),
        attempt: msg.attempt,
        trigger: msg.trigger,
        status: AttemptStatus::Sandboxed,
        status_code: None,
        error: None,
        latency_ms: None,
        lag_ms: None,
        request_url: target.url.as_str().to_owned(),
        request_headers: redact(&headers, &target.custom),
        request_body: msg.delivery_id.is_none().then(|| msg.body.to_owned()),
        response_headers: None,
        response_body: None,
        created_at: now,
        delivered_at: None,
        superseded: false,
    };
    if target.sandbox && msg.trigger != Trigger::Verify {
        return Attempted {
            row,
            retry_after: None,
        };
    }
    let reply = match (&target.blocked, target.guard.check_literal(target.url)) {
        (Some(reason), _) => Reply::refused(reason.clone()),
        (None, Err(refused)) => Reply::refused(refused.to_string()),
        (None, Ok(())) => send(client, target, headers, msg.body).await,
    };
    row.latency_ms = Some(reply.latency_ms);
    row.status_code = reply.status.map(i32::from);
    row.response_headers = reply.headers;
    row.response_body = reply.body;
    let ok = reply.status.is_some_and(|s| (200..300).contains(&s));
    row.status = if ok {
        AttemptStatus::Success
    } else {
        AttemptStatus::Failure
    };
    row.error = if ok { None } else { reply.error };
    row.delivered_at = ok.then(|| clock.now());
    Attempted {
        row,
        retry_after: reply.retry_after,
    }
}

struct Reply {
    status: Option<u16>,
    error: Option<String>,
    latency_ms: i64,
    headers: Option<Vec<(String, String)>>,
    body: Option<String>,
    retry_after: Option<String>,
}

impl Reply {
    fn refused(error: String) -> Self {
        Self {
            status: None,
            error: Some(error),
            latency_ms: 0,
            headers: None,
            body: None,
            retry_after: None,
        }
    }
}

async fn send(
    client: &reqwest::Client,
    target: &Target<'_>,
    headers: Vec<(String, String)>,
    body: &str,
) -> Reply {
    let started = Instant::now();
    let mut req = client
        .post(target.url.clone())
        .timeout(target.timeout)
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let outcome = async {
        let mut resp = req.send().await?;
        let status = resp.status().as_u16();
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut excerpt = Vec::new();
        while excerpt.len() < RESPONSE_EXCERPT_BYTES {
            match resp.chunk().await? {
                Some(chunk) => excerpt.extend_from_slice(&chunk),
                None => break,
            }
        }
        excerpt.truncate(RESPONSE_EXCERPT_BYTES);
        Ok::<_, reqwest::Error>((status, headers, excerpt))
    }
    .await;
    let latency_ms = started.elapsed().as_millis() as i64;
    match outcome {
        Ok((status, headers, excerpt)) => {
            let retry_after = headers
                .iter()
                .find(|(k, _)| k == "retry-after")
                .map(|(_, v)| v.clone())
                .filter(|_| status == 429 || status == 503);
            let error = (!(200..300).contains(&status)).then(|| {
                match headers.iter().find(|(k, _)| k == "location") {
                    Some((_, to)) if (300..400).contains(&status) => format!(
                        "HTTP {status}: redirect to {} not followed (give the webhook its final URL)",
                        clip(to, 200)
                    ),
                    _ => format!("HTTP {status}"),
                }
            });
            Reply {
                status: Some(status),
                error,
                latency_ms,
                headers: Some(keepable_headers(headers)),
                body: Some(crate::store::storable(&String::from_utf8_lossy(&excerpt))),
                retry_after,
            }
        }
        Err(e) => Reply {
            latency_ms,
            ..Reply::refused(describe(&e, target.timeout))
        },
    }
}

/// A response's headers as the audit log keeps them: in order, values cut at
/// `RESPONSE_HEADER_VALUE_BYTES`, and at most `RESPONSE_HEADERS_BYTES` in all; past that, one
/// `x-herald-omitted` entry says how many were left out.
fn keepable_headers(headers: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut kept = Vec::with_capacity(headers.len().min(32));
    let mut used = 0;
    let mut omitted = (0usize, 0usize);
    for (name, value) in headers {
        let original = name.len() + value.len();
        let value = if value.len() > RESPONSE_HEADER_VALUE_BYTES {
            format!("{}…", clip(&value, RESPONSE_HEADER_VALUE_BYTES))
        } else {
            value
        };
        let size = name.len() + value.len();
        if omitted.0 > 0 || used + size > RESPONSE_HEADERS_BYTES {
            omitted.0 += 1;
            omitted.1 += original;
            continue;
        }
        used += size;
        kept.push((name, value));
    }
    if omitted.0 > 0 {
        kept.push((
            OMITTED_HEADERS.to_owned(),
            format!(
                "{} more headers ({} bytes) not kept: Herald keeps {} KiB of a response's headers",
                omitted.0,
                omitted.1,
                RESPONSE_HEADERS_BYTES / 1024
            ),
        ));
    }
    kept
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn clip(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A transport error in words for the audit log, Verify and Send Test: what happened, in the
/// terms a receiver's owner acts on, then its root cause as the network stack gave it. No
/// secrets: URLs carry no credentials by construction.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("timed out after {} s", timeout.as_secs());
    }
    let chain = Chain::of(e);
    if let Some(refusal) = chain.guard {
        // The private-address guard's own words already name the host and the reason.
        return format!("not sent: {refusal}");
    }
    let url = e.url();
    let host = url
        .and_then(url::Url::host_str)
        .unwrap_or("the receiver's host");
    let at = match url.and_then(url::Url::port_or_known_default) {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let https = url.is_some_and(|u| u.scheme() == "https");
    let root = &chain.root;
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    let hung_up = chain.incomplete
        || (!e.is_connect()
            && matches!(
                chain.kind,
                Some(ConnectionReset | ConnectionAborted | BrokenPipe)
            ));
    match chain.kind {
        Some(std::io::ErrorKind::ConnectionRefused) => {
            format!("connection refused at {at}: nothing is listening there ({root})")
        }
        _ if chain.dns => format!("host not found: {host} ({root})"),
        Some(std::io::ErrorKind::InvalidData) if e.is_connect() && https => {
            format!("TLS handshake with {at} failed: {root} (does it serve HTTPS?)")
        }
        _ if hung_up => format!("the receiver closed the connection without answering ({root})"),
        _ if e.is_connect() => format!("connection to {at} failed: {}", chain.text),
        _ => format!("request failed: {}", chain.text),
    }
}

/// The kind of an I/O error, looking inside the ones that only wrap another (TLS failures come
/// as an `Other` error around an `InvalidData` one, whose own source is not in the chain).
fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut io = e.downcast_ref::<std::io::Error>()?;
    while let Some(inner) = io
        .get_ref()
        .and_then(|i| i.downcast_ref::<std::io::Error>())
    {
        io = inner;
    }
    Some(io.kind())
}

/// What a transport error's chain of sources says, read once.
struct Chain {
    /// The kind of the first I/O error in it, if any.
    kind: Option<std::io::ErrorKind>,
    /// A name look-up failed.
    dns: bool,
    /// Herald's private-address guard refused the host, in its words.
    guard: Option<String>,
    /// The connection closed before a whole answer came.
    incomplete: bool,
    /// The innermost cause's own words.
    root: String,
    /// Every source's words, outermost first, without the HTTP client's wrappers ("client
    /// error (Connect)"), which say nothing the lead does not.
    text: String,
}

impl Chain {
    fn of(e: &reqwest::Error) -> Self {
        let mut chain = Self {
            kind: None,
            dns: false,
            guard: None,
            incomplete: false,
            root: String::new(),
            text: String::new(),
        };
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            let words = s.to_string();
            if chain.kind.is_none() {
                chain.kind = io_kind(s);
            }
            // hyper's and hyper-util's own words: their error kinds are not public types here.
            chain.incomplete |= words.starts_with("connection closed before message completed");
            chain.dns |= words.starts_with("dns error");
            if let Some(g) = s.downcast_ref::<super::guard::GuardError>() {
                chain.guard = Some(g.to_string());
            }
            if !words.starts_with("client error (") {
                if !chain.text.is_empty() {
                    chain.text.push_str(": ");
                }
                chain.text.push_str(&words);
            }
            chain.root = words;
            source = s.source();
        }
        if chain.text.is_empty() {
            chain.text = e.to_string();
        }
        if chain.root.is_empty() {
            chain.root = e.to_string();
        }
        chain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_response_headers_is_kept_to_8_kib_and_says_what_was_left_out() {
        let headers: Vec<(String, String)> = (0..100)
            .map(|i| (format!("x-big-{i}"), "é".repeat(2000)))
            .collect();
        let kept = keepable_headers(headers);
        let (last, first) = (kept.last().unwrap(), &kept[0]);
        assert_eq!(first.1.len(), RESPONSE_HEADER_VALUE_BYTES + "…".len());
        assert!(first.1.ends_with("é…"), "cut at a character boundary");
        let size: usize = kept[..kept.len() - 1]
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum();
        assert!(size <= RESPONSE_HEADERS_BYTES, "{size} bytes kept");
        assert_eq!(kept.len() - 1, 7, "seven headers fit in 8 KiB");
        assert_eq!(last.0, OMITTED_HEADERS);
        assert!(
            last.1.starts_with("93 more headers (")
                && last
                    .1
                    .ends_with("Herald keeps 8 KiB of a response's headers"),
            "{}",
            last.1
        );
        let few = vec![("content-type".to_owned(), "text/plain".to_owned())];
        assert_eq!(
            keepable_headers(few.clone()),
            few,
            "a usual answer is kept whole"
        );
    }

    #[test]
    fn authorization_is_redacted_signatures_are_kept() {
        let h = vec![
            ("authorization".to_owned(), "Basic dXNlcjpwdw==".to_owned()),
            ("webhook-signature".to_owned(), "v1,abc".to_owned()),
        ];
        let r = redact(&h, &[]);
        assert_eq!(r[0].1, "Basic [redacted]");
        assert_eq!(r[1].1, "v1,abc");
    }

    #[test]
    fn secret_custom_headers_are_redacted_plain_ones_kept() {
        let secrets = WebhookSecrets {
            headers: vec![("X-Token".into(), "s3cret".into())],
            ..Default::default()
        };
        let stored = [
            StoredHeader {
                name: "X-Tenant".into(),
                value: Some("acme".into()),
                secret: false,
            },
            StoredHeader {
                name: "X-Token".into(),
                value: None,
                secret: true,
            },
            StoredHeader {
                name: "X-Lost".into(),
                value: None,
                secret: true,
            },
        ];
        let custom = custom_headers(&stored, &secrets);
        assert_eq!(custom.len(), 2, "a secret without a value is not sent");
        let sent: Vec<(String, String)> = custom
            .iter()
            .map(|c| (c.name.clone(), c.value.clone()))
            .collect();
        assert_eq!(sent[1], ("x-token".to_owned(), "s3cret".to_owned()));
        let r = redact(&sent, &custom);
        assert_eq!(r[0].1, "acme");
        assert_eq!(r[1].1, "[redacted]");
    }
}
