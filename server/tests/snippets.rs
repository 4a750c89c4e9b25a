//! The verification snippets the console shows, run against real deliveries: for each method a
//! webhook delivers a real event to a receiver on 127.0.0.1; then the Python and Node.js snippets
//! run as programs, the Go snippet is built and run with `go run`, and the Rust snippet is
//! compiled into this test. Each must accept the request as sent and refuse it with one byte of
//! the body changed (Basic: with the wrong password).

use crate::helpers::*;
use herald::delivery::clock::Clock;
use herald::domain::event::NewEvent;
use herald::domain::settings::WebhookDraft;
use herald::domain::snippets::{snippet, Language};
use herald::domain::webhook::AuthKind;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

#[path = "../../src/domain/snippets/basic.rs"]
mod rs_basic;
#[path = "../../src/domain/snippets/hmac.rs"]
mod rs_hmac;
#[path = "../../src/domain/snippets/jwt.rs"]
mod rs_jwt;
#[path = "../../src/domain/snippets/signature.rs"]
mod rs_signature;

const USER: &str = "herald-user";
const PASSWORD: &str = "basic-password-123";

/// One request as the receiver got it, and what the snippet is given to check it with.
struct Case {
    kind: AuthKind,
    /// The signing secret, or for Basic the password.
    secret: String,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Case {
    /// Header names in lower case, as the snippets expect them.
    fn headers_json(&self) -> Value {
        let map: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap())))
            .collect();
        Value::Object(map)
    }

    fn tampered(&self) -> Case {
        let mut body = self.body.clone();
        body.push(b' ');
        Case {
            kind: self.kind,
            secret: if self.kind == AuthKind::Basic {
                "not-the-password".into()
            } else {
                self.secret.clone()
            },
            headers: self.headers.clone(),
            body,
        }
    }
}

async fn delivered(s: &Setup, kind: AuthKind) -> Case {
    let rx = TestReceiver::start().await;
    let auth = match kind {
        AuthKind::Basic => json!({"kind": "basic", "username": USER, "password": PASSWORD}),
        AuthKind::Hmac => json!({"kind": "hmac", "header": "X-Incentable-Signature"}),
        AuthKind::Jwt => json!({"kind": "jwt"}),
        _ => json!({"kind": "signature"}),
    };
    let draft: WebhookDraft = serde_json::from_value(json!({
        "name": format!("Snippet {kind:?}"), "url": rx.url, "auth": auth,
        "event_types": ["points.awarded"],
    }))
    .unwrap();
    let saved = s.engine.create_webhook(&s.admin, &draft).await.unwrap();
    let secret = match kind {
        AuthKind::Basic => PASSWORD.to_owned(),
        _ => saved.secret.expect("a signing secret is shown once"),
    };
    let event = NewEvent::parse(
        "points.awarded",
        json!({"user_id": "u_1", "points": 5, "note": "héllo"}),
        None,
        None,
        s.clock.now(),
    )
    .unwrap();
    s.engine.ingest(&s.admin.program, event).await.unwrap();
    // Only this webhook's delivery is due: earlier ones were drained already.
    s.engine.drain().await.unwrap();
    let got = rx.received().pop().expect("delivered");
    Case {
        kind,
        secret,
        headers: got.headers,
        body: got.body.to_vec(),
    }
}

/// The arguments the snippet function takes (string literals in JSON syntax read the same in
/// Python, JavaScript and Go).
fn call_args(case: &Case) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap();
    match case.kind {
        AuthKind::Basic => format!("{}, {}, h", q(USER), q(&case.secret)),
        _ => format!("{}, h, b", q(&case.secret)),
    }
}

fn run(program: &str, args: &[&str], dir: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("GOFLAGS", "-mod=mod")
        // One build cache for every run, so the standard library is compiled once.
        .env("GOCACHE", std::env::temp_dir().join("herald-snippets-gocache"))
        .env("GOPATH", std::env::temp_dir().join("herald-snippets-gopath"))
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} is needed to check the snippets (scripts/install-tools.sh test installs it): {e}")
        });
    assert!(
        out.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Runs the snippet of `lang` on `case`; `true` when it accepted the request.
fn verdict(case: &Case, lang: Language) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let code = snippet(case.kind, lang, None).unwrap();
    std::fs::write(
        dir.path().join("headers.json"),
        case.headers_json().to_string(),
    )
    .unwrap();
    std::fs::write(dir.path().join("body"), &case.body).unwrap();
    let args = call_args(case);
    match lang {
        Language::Python => {
            let program = format!(
                "{code}\nimport json\nh = json.load(open('headers.json'))\nb = open('body', 'rb').read()\nprint(verify_herald({args}))\n"
            );
            std::fs::write(dir.path().join("check.py"), program).unwrap();
            run("python3", &["check.py"], dir.path()) == "True"
        }
        Language::Node => {
            let program = format!(
                "{code}\nconst fs = require('fs');\nconst h = JSON.parse(fs.readFileSync('headers.json'));\nconst b = fs.readFileSync('body');\nconsole.log(verifyHerald({args}));\n"
            );
            std::fs::write(dir.path().join("check.js"), program).unwrap();
            run("node", &["check.js"], dir.path()) == "true"
        }
        Language::Go => {
            std::fs::write(dir.path().join("go.mod"), "module hooks\n\ngo 1.19\n").unwrap();
            std::fs::write(
                dir.path().join("verify.go"),
                code.replacen("package hooks", "package main", 1),
            )
            .unwrap();
            let main = format!(
                "package main\n\nimport (\n\t\"encoding/json\"\n\t\"fmt\"\n\t\"net/http\"\n\t\"os\"\n)\n\nfunc main() {{\n\traw, _ := os.ReadFile(\"headers.json\")\n\tvar m map[string]string\n\t_ = json.Unmarshal(raw, &m)\n\th := http.Header{{}}\n\tfor k, v := range m {{\n\t\th.Set(k, v)\n\t}}\n\tb, _ := os.ReadFile(\"body\")\n\t_ = b\n\tfmt.Println(VerifyHerald({args}))\n}}\n"
            );
            std::fs::write(dir.path().join("main.go"), main).unwrap();
            run("go", &["run", "."], dir.path()) == "true"
        }
        Language::Rust => match case.kind {
            AuthKind::Signature => {
                rs_signature::verify_herald(&case.secret, &case.headers, &case.body)
            }
            AuthKind::Jwt => rs_jwt::verify_herald(&case.secret, &case.headers, &case.body),
            AuthKind::Basic => rs_basic::verify_herald(USER, &case.secret, &case.headers),
            AuthKind::Hmac => rs_hmac::verify_herald(&case.secret, &case.headers, &case.body),
            AuthKind::None => unreachable!(),
        },
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_snippet_verifies_real_deliveries_and_refuses_tampered_ones() {
    let Some(s) = setup(Backend::Sqlite, "snippets").await else {
        return;
    };
    for kind in [
        AuthKind::Signature,
        AuthKind::Jwt,
        AuthKind::Basic,
        AuthKind::Hmac,
    ] {
        let case = delivered(&s, kind).await;
        let tampered = case.tampered();
        for lang in Language::ALL {
            let (genuine, forged) =
                tokio::task::block_in_place(|| (verdict(&case, *lang), verdict(&tampered, *lang)));
            assert!(
                genuine,
                "the {lang:?} snippet refused a genuine {kind:?} request"
            );
            assert!(
                !forged,
                "the {lang:?} snippet accepted a tampered {kind:?} request"
            );
        }
    }
}
