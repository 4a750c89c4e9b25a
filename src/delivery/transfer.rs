//! Export and import of a program's webhook configurations, so a tested configuration moves
//! cleanly between programs (or installs, or lives in git). Secrets stay out unless asked for;
//! then they travel sealed with a key derived from a passphrase. An import is previewed first
//! (what will be created, changed, left alone or cannot be imported) and applied in one
//! transaction: all of it, or nothing.

use super::webhooks::{admin, changed_fields, draft_of};
use super::{Engine, EngineError, Result};
use crate::auth::seal::Sealer;
use crate::auth::Actor;
use crate::domain::settings::{WebhookDraft, WebhookPatch};
use crate::domain::transfer::{
    ImportAction, ImportItem, ImportPlan, OnConflict, ProgramExport, SealedSecrets, EXPORT_FORMAT,
    EXPORT_VERSION,
};
use crate::domain::webhook::AuthKind;
use crate::domain::ValidationError;
use crate::store::{Webhook, WebhookQuery, WebhookRecord};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The key derivation `sealed_secrets` uses.
const KDF: &str = "argon2id";
/// Shortest passphrase accepted for sealing exported secrets.
pub const MIN_PASSPHRASE_CHARS: usize = 12;

/// One webhook's secrets inside the sealed part of an export.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Carried {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password: Option<String>,
    /// Secret custom header values, by header name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    headers: Vec<(String, String)>,
}

/// What a prepared import would write.
struct Prepared {
    plan: ImportPlan,
    new: Vec<WebhookRecord>,
    changed: Vec<WebhookRecord>,
}

impl Engine {
    /// The actor's program's webhooks as an export document (by name). With a `passphrase`, their
    /// current signing secrets and Basic passwords travel too, sealed with it.
    pub async fn export_program(
        &self,
        actor: &Actor,
        program_name: &str,
        passphrase: Option<&str>,
    ) -> Result<ProgramExport> {
        let program = admin(actor)?;
        let mut hooks = self
            .store()
            .list_webhooks(program, &WebhookQuery::default())
            .await?;
        hooks.sort_by_key(|w| w.record.name.as_str().to_lowercase());
        let sealed_secrets = match passphrase {
            None => None,
            Some(p) => Some(self.seal_secrets(&hooks, p)?),
        };
        let detail = format!(
            "{} webhook(s), {}",
            hooks.len(),
            if sealed_secrets.is_some() {
                "secrets sealed with a passphrase"
            } else {
                "without secrets"
            }
        );
        self.record_transfer(actor, "exported", &detail).await;
        Ok(ProgramExport {
            format: EXPORT_FORMAT.to_owned(),
            version: EXPORT_VERSION,
            program: program_name.to_owned(),
            exported_at: self.now(),
            webhooks: hooks.iter().map(draft_of).collect(),
            sealed_secrets,
        })
    }

    async fn record_transfer(&self, actor: &Actor, action: &str, detail: &str) {
        crate::auth::access::record_activity(
            self.store().as_ref(),
            actor,
            action,
            "webhook configurations",
            detail,
        )
        .await;
    }

    fn seal_secrets(&self, hooks: &[Webhook], passphrase: &str) -> Result<SealedSecrets> {
        if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
            return Err(ValidationError::new(
                "passphrase",
                format!(
                    "Use a passphrase of at least {MIN_PASSPHRASE_CHARS} characters to seal secrets"
                ),
            )
            .into());
        }
        let mut carried = BTreeMap::new();
        for w in hooks {
            let secrets = self.open_secrets(w)?;
            let c = Carried {
                secret: secrets.current().map(|s| s.expose().to_owned()),
                password: secrets.basic_password.clone(),
                headers: secrets.headers.clone(),
            };
            if c.secret.is_some() || c.password.is_some() || !c.headers.is_empty() {
                carried.insert(w.record.name.as_str().to_lowercase(), c);
            }
        }
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let sealer = Sealer::from_passphrase(passphrase, &salt)?;
        let plain = serde_json::to_vec(&carried).map_err(|e| {
            EngineError::Refused(format!("could not encode the secrets to export: {e}"))
        })?;
        Ok(SealedSecrets {
            kdf: KDF.to_owned(),
            salt: STANDARD.encode(salt),
            sealed: sealer.seal(&plain),
        })
    }

    /// What importing `doc` into the actor's program would do; writes nothing.
    pub async fn plan_import(
        &self,
        actor: &Actor,
        doc: &ProgramExport,
        on_conflict: OnConflict,
        passphrase: Option<&str>,
    ) -> Result<ImportPlan> {
        Ok(self
            .prepare_import(actor, doc, on_conflict, passphrase)
            .await?
            .plan)
    }

    /// Imports `doc` into the actor's program in one transaction, as `plan_import` previews it.
    /// Refused, with nothing written, while any webhook of it cannot be imported.
    pub async fn apply_import(
        &self,
        actor: &Actor,
        doc: &ProgramExport,
        on_conflict: OnConflict,
        passphrase: Option<&str>,
    ) -> Result<ImportPlan> {
        let program = admin(actor)?.clone();
        let Prepared {
            mut plan,
            new,
            changed,
        } = self
            .prepare_import(actor, doc, on_conflict, passphrase)
            .await?;
        let invalid = plan.count(ImportAction::Invalid);
        if invalid > 0 {
            return Err(EngineError::Refused(format!(
                "{invalid} webhook(s) of this document cannot be imported as they are (see the preview); nothing was imported"
            )));
        }
        self.store()
            .import_webhooks(&program, &new, &changed)
            .await?;
        // Each update is fenced on the version read and moves it by one.
        for w in &changed {
            self.inner.changes.changed(&w.id, w.version + 1);
        }
        self.inner.subscribers.clear();
        for w in &changed {
            self.settle_after_change(&w.id).await;
        }
        self.wake();
        let detail = format!(
            "from {:?}: {} created, {} updated, {} unchanged, {} skipped",
            doc.program,
            plan.count(ImportAction::Create),
            plan.count(ImportAction::Update),
            plan.count(ImportAction::Unchanged),
            plan.count(ImportAction::Skip)
        );
        self.record_transfer(actor, "imported", &detail).await;
        plan.applied = true;
        Ok(plan)
    }

    async fn prepare_import(
        &self,
        actor: &Actor,
        doc: &ProgramExport,
        on_conflict: OnConflict,
        passphrase: Option<&str>,
    ) -> Result<Prepared> {
        let program = admin(actor)?;
        if doc.format != EXPORT_FORMAT {
            return Err(ValidationError::new(
                "format",
                format!("This is not a Herald program export (format should be {EXPORT_FORMAT:?})"),
            )
            .into());
        }
        if doc.version != EXPORT_VERSION {
            return Err(ValidationError::new(
                "version",
                format!(
                    "Export version {} is not supported; this Herald reads version {EXPORT_VERSION}",
                    doc.version
                ),
            )
            .into());
        }
        let carried = open_carried(doc.sealed_secrets.as_ref(), passphrase)?;
        let existing: HashMap<String, Webhook> = self
            .store()
            .list_webhooks(program, &WebhookQuery::default())
            .await?
            .into_iter()
            .map(|w| (w.record.name.as_str().to_lowercase(), w))
            .collect();
        let mut prepared = Prepared {
            plan: ImportPlan::default(),
            new: Vec::new(),
            changed: Vec::new(),
        };
        let mut seen = HashSet::new();
        for given in &doc.webhooks {
            let key = given.name.trim().to_lowercase();
            let mut draft = given.clone();
            draft.auth.secret = None;
            draft.auth.password = None;
            let carried = carried.get(&key);
            if let Some(c) = carried {
                match AuthKind::parse(&draft.auth.kind) {
                    Ok(AuthKind::Signature | AuthKind::Jwt) => draft.auth.secret = c.secret.clone(),
                    Ok(AuthKind::Basic) => draft.auth.password = c.password.clone(),
                    _ => {}
                }
                for h in draft
                    .headers
                    .iter_mut()
                    .filter(|h| h.secret && h.value.is_empty())
                {
                    if let Some((_, v)) = c
                        .headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(&h.name))
                    {
                        h.value = v.clone();
                    }
                }
            }
            let item = |action, detail: String| ImportItem {
                name: given.name.clone(),
                action,
                detail,
            };
            if !seen.insert(key.clone()) {
                prepared.plan.items.push(item(
                    ImportAction::Invalid,
                    "The document names this webhook more than once".into(),
                ));
                continue;
            }
            let outcome = match existing.get(&key) {
                None => self.plan_create(program, &draft, &mut prepared).await,
                Some(_) if on_conflict == OnConflict::Skip => Ok((
                    ImportAction::Skip,
                    "A webhook with this name exists; it is left as it is".into(),
                )),
                Some(current) => {
                    self.plan_update(program, current, draft, &mut prepared)
                        .await
                }
            };
            match outcome {
                Ok((action, detail)) => prepared.plan.items.push(item(action, detail)),
                Err(EngineError::Validation(v)) => prepared.plan.items.push(item(
                    ImportAction::Invalid,
                    format!("{}: {}", v.field, v.message),
                )),
                Err(e) => return Err(e),
            }
        }
        Ok(prepared)
    }

    async fn plan_create(
        &self,
        program: &crate::domain::ids::ProgramId,
        draft: &WebhookDraft,
        prepared: &mut Prepared,
    ) -> Result<(ImportAction, String)> {
        if AuthKind::parse(&draft.auth.kind).ok() == Some(AuthKind::Basic)
            && draft.auth.password.is_none()
        {
            return Err(ValidationError::new(
                "auth.password",
                "Basic Auth needs its password: export with secrets (and a passphrase) to bring it along",
            )
            .into());
        }
        let generated = draft.auth.secret.is_none();
        let (record, shown) = self.prepare_new(program, draft).await?;
        let detail = match shown {
            Some(secret) if generated => {
                prepared
                    .plan
                    .secrets
                    .push((record.name.as_str().to_owned(), secret));
                "A new signing secret is generated (shown once, after the import)".to_owned()
            }
            Some(_) => "With its imported secret".to_owned(),
            None => String::new(),
        };
        prepared.new.push(record);
        Ok((ImportAction::Create, detail))
    }

    async fn plan_update(
        &self,
        program: &crate::domain::ids::ProgramId,
        current: &Webhook,
        draft: WebhookDraft,
        prepared: &mut Prepared,
    ) -> Result<(ImportAction, String)> {
        let before = draft_of(current);
        let secret_given = draft.auth.secret.is_some()
            || draft.auth.password.is_some()
            || draft
                .headers
                .iter()
                .any(|h| h.secret && !h.value.is_empty());
        // The target's Enabled switch is its own: an import does not turn webhooks on or off.
        let patch = WebhookPatch::replacing(draft, current.record.version);
        let mut after = patch.clone().apply(before.clone());
        after.auth.secret = None;
        after.auth.password = None;
        for h in after.headers.iter_mut().filter(|h| h.secret) {
            h.value.clear();
        }
        let settings_changed = before != after;
        if !settings_changed && !secret_given {
            return Ok((ImportAction::Unchanged, String::new()));
        }
        let change = match (settings_changed, secret_given) {
            (true, true) => format!("{}, secret", changed_fields(&before, &after)),
            (true, false) => changed_fields(&before, &after),
            _ => "secret".to_owned(),
        };
        let (record, _, _) = self.prepare_patch(program, current.clone(), patch).await?;
        prepared.changed.push(record);
        Ok((ImportAction::Update, change))
    }
}

/// The secrets sealed in an export, by lower-cased webhook name. Without a passphrase none are
/// read (webhooks are imported without them).
fn open_carried(
    sealed: Option<&SealedSecrets>,
    passphrase: Option<&str>,
) -> Result<HashMap<String, Carried>> {
    let (Some(sealed), Some(passphrase)) = (sealed, passphrase.filter(|p| !p.is_empty())) else {
        return Ok(HashMap::new());
    };
    let wrong = || {
        EngineError::from(ValidationError::new(
            "passphrase",
            "This passphrase does not open the export's secrets",
        ))
    };
    if sealed.kdf != KDF {
        return Err(ValidationError::new(
            "sealed_secrets",
            format!("Secrets sealed with {:?} cannot be read", sealed.kdf),
        )
        .into());
    }
    let salt = STANDARD.decode(&sealed.salt).map_err(|_| wrong())?;
    let sealer = Sealer::from_passphrase(passphrase, &salt).map_err(|_| wrong())?;
    let plain = sealer.open(&sealed.sealed).map_err(|_| wrong())?;
    serde_json::from_slice(&plain).map_err(|_| wrong())
}
