//! `Access`: the one place that decides who is calling. Console sign-in (throttled, argon2id),
//! database sessions with idle and absolute expiry, the first-run setup link, users, API keys
//! (hashed, compared in constant time, cached briefly) and the admin activity log.

use super::{api_key, password, throttle};
use crate::domain::account::{api_key_name, check_new_password, Email, KeyScope, Role};
use crate::domain::ids::{ActivityId, ApiKeyId, ProgramId, UserId};
use crate::domain::ValidationError;
use crate::store::{
    self, ActivityRecord, ApiKeySummary, SessionRecord, Store, StoreError, UserRecord,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How long a console session lives.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// Signed out after this long without a request.
    pub idle: Duration,
    /// Signed out this long after signing in, however active.
    pub absolute: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: Duration::minutes(60),
            absolute: Duration::hours(12),
        }
    }
}

/// Who is acting: a console user, an API key, or the command line. Every change is recorded in
/// the activity log under `name`.
#[derive(Debug, Clone, PartialEq)]
pub struct Actor {
    pub program: ProgramId,
    pub name: String,
    pub role: Role,
    pub user: Option<UserId>,
}

impl Actor {
    /// An operator at the `herald` command line (trusted: they hold the database).
    pub fn command_line(program: ProgramId) -> Self {
        Self {
            program,
            name: "command line".into(),
            role: Role::Admin,
            user: None,
        }
    }

    fn of_user(u: &UserRecord) -> Self {
        Self {
            program: u.program_id.clone(),
            name: u.email.clone(),
            role: u.role,
            user: Some(u.id.clone()),
        }
    }

    pub fn require_admin(&self) -> Result<(), AccessError> {
        if self.role.can_manage() {
            Ok(())
        } else {
            Err(AccessError::Forbidden)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// Wrong e-mail or password (never says which).
    #[error("E-mail or password is incorrect")]
    InvalidLogin,
    #[error("Too many sign-in attempts; try again in {} minute(s)", minutes(*.0))]
    Throttled(std::time::Duration),
    #[error("your role does not allow this")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Refused(String),
    #[error("a {0} with this value already exists")]
    Conflict(&'static str),
    #[error(transparent)]
    Store(StoreError),
    /// A failure inside Herald (e.g. the password-hashing task died): logged where it happens,
    /// answered opaquely.
    #[error("internal error")]
    Internal,
}

fn minutes(d: std::time::Duration) -> u64 {
    d.as_secs().div_ceil(60).max(1)
}

impl From<StoreError> for AccessError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { field } => Self::Conflict(field),
            other => Self::Store(other),
        }
    }
}

type AccessResult<T> = Result<T, AccessError>;

/// A freshly started session: `token` goes in the cookie and nowhere else.
pub struct NewSession {
    pub token: String,
    pub actor: Actor,
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone)]
pub struct Access {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    policy: SessionPolicy,
    throttle: throttle::Throttle,
    keys: KeyCache,
}

impl Access {
    pub fn new(store: Arc<dyn Store>, policy: SessionPolicy, limits: throttle::Limits) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                policy,
                throttle: throttle::Throttle::new(limits),
                keys: KeyCache::default(),
            }),
        }
    }

    fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    pub fn policy(&self) -> SessionPolicy {
        self.inner.policy
    }

    // --- sign-in and sessions ------------------------------------------------------------------

    /// Checks an e-mail and password and starts a session. `address` is the client's IP (for
    /// throttling). Errors never reveal whether the e-mail has an account.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        address: &str,
    ) -> AccessResult<NewSession> {
        let throttle = &self.inner.throttle;
        if let Some(wait) = throttle.blocked(email, address) {
            return Err(AccessError::Throttled(wait));
        }
        let user = match Email::parse(email) {
            Ok(e) => self.store().user_by_email(e.as_str()).await?,
            Err(_) => None,
        };
        let typed = password.to_owned();
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let matched = tokio::task::spawn_blocking(move || match hash {
            Some(h) => password::verify(&typed, &h),
            None => {
                password::verify_nothing(&typed);
                false
            }
        })
        .await
        .unwrap_or(false);
        match user {
            Some(u) if matched => {
                throttle.record_success(email);
                self.start_session(&u).await
            }
            _ => {
                throttle.record_failure(email, address);
                Err(AccessError::InvalidLogin)
            }
        }
    }

    async fn start_session(&self, user: &UserRecord) -> AccessResult<NewSession> {
        let token = random_token();
        let now = store::now();
        let expires_at = now + self.inner.policy.absolute;
        self.store()
            .insert_session(&SessionRecord {
                id_hash: sha256_hex(&token),
                user_id: user.id.clone(),
                created_at: now,
                last_seen_at: now,
                expires_at,
            })
            .await?;
        Ok(NewSession {
            token,
            actor: Actor::of_user(user),
            expires_at,
        })
    }

    /// The user a session cookie belongs to, if the session is live; extends its idle window.
    pub async fn session(&self, token: &str) -> AccessResult<Option<Actor>> {
        if token.is_empty() || token.len() > 100 {
            return Ok(None);
        }
        let id_hash = sha256_hex(token);
        let Some((session, user)) = self.store().session(&id_hash).await? else {
            return Ok(None);
        };
        let now = store::now();
        let policy = self.inner.policy;
        if now >= session.expires_at || now - session.last_seen_at >= policy.idle {
            self.store().delete_session(&id_hash).await?;
            return Ok(None);
        }
        // Stamp activity at most every tenth of the idle window (not on every request).
        if now - session.last_seen_at >= (policy.idle / 10).min(Duration::seconds(60)) {
            self.store().touch_session(&id_hash, now).await?;
        }
        Ok(Some(Actor::of_user(&user)))
    }

    pub async fn logout(&self, token: &str) -> AccessResult<()> {
        self.store().delete_session(&sha256_hex(token)).await?;
        Ok(())
    }

    /// Deletes expired and idle sessions (run now and then).
    pub async fn sweep_sessions(&self) -> AccessResult<u64> {
        let now = store::now();
        Ok(self
            .store()
            .delete_stale_sessions(now, now - self.inner.policy.idle)
            .await?)
    }

    // --- first run -----------------------------------------------------------------------------

    pub async fn needs_setup(&self) -> AccessResult<bool> {
        Ok(self.store().count_users().await? == 0)
    }

    /// A new one-time setup token when no user exists yet (valid until any setup token is used).
    pub async fn issue_setup_token(&self) -> AccessResult<Option<String>> {
        if !self.needs_setup().await? {
            return Ok(None);
        }
        let token = random_token();
        self.store()
            .add_setup_token(&sha256_hex(&token), store::now())
            .await?;
        Ok(Some(token))
    }

    pub async fn setup_token_valid(&self, token: &str) -> AccessResult<bool> {
        Ok(!token.is_empty()
            && token.len() <= 100
            && self.store().setup_token_exists(&sha256_hex(token)).await?
            && self.needs_setup().await?)
    }

    /// Creates the first admin with a setup token and signs them in.
    pub async fn complete_setup(
        &self,
        token: &str,
        email: &str,
        password: &str,
    ) -> AccessResult<NewSession> {
        let user = self
            .new_user_record(
                self.store().default_program().await?,
                email,
                password,
                Role::Admin,
            )
            .await?;
        if !self
            .store()
            .create_first_user(&sha256_hex(token), &user)
            .await?
        {
            return Err(AccessError::Refused(
                "This setup link has already been used or is not valid; sign in instead".into(),
            ));
        }
        let session = self.start_session(&user).await?;
        self.record(
            &session.actor,
            "created",
            &format!("user {}", user.email),
            "first admin, with the setup link",
        )
        .await;
        Ok(session)
    }

    // --- users ---------------------------------------------------------------------------------

    async fn new_user_record(
        &self,
        program: ProgramId,
        email: &str,
        password: &str,
        role: Role,
    ) -> AccessResult<UserRecord> {
        let email = Email::parse(email)?;
        check_new_password(password)?;
        let typed = password.to_owned();
        let password_hash = tokio::task::spawn_blocking(move || password::hash(&typed))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "password hashing task failed");
                AccessError::Internal
            })?;
        Ok(UserRecord {
            id: UserId::generate(),
            program_id: program,
            email: email.as_str().to_owned(),
            password_hash,
            role,
            created_at: store::now(),
        })
    }

    pub async fn create_user(
        &self,
        actor: &Actor,
        email: &str,
        password: &str,
        role: Role,
    ) -> AccessResult<UserRecord> {
        actor.require_admin()?;
        let user = self
            .new_user_record(actor.program.clone(), email, password, role)
            .await?;
        self.store().insert_user(&user).await.map_err(|e| match e {
            StoreError::Conflict { .. } => {
                ValidationError::new("email", "A user with this e-mail already exists").into()
            }
            other => AccessError::from(other),
        })?;
        self.record(
            actor,
            "created",
            &format!("user {}", user.email),
            user.role.label(),
        )
        .await;
        Ok(user)
    }

    pub async fn list_users(&self, program: &ProgramId) -> AccessResult<Vec<UserRecord>> {
        Ok(self.store().list_users(program).await?)
    }

    /// Removes a user (signing them out everywhere). Nobody removes themselves, so a program
    /// always keeps the admin doing the removing.
    pub async fn delete_user(&self, actor: &Actor, id: &UserId) -> AccessResult<()> {
        actor.require_admin()?;
        if actor.user.as_ref() == Some(id) {
            return Err(AccessError::Refused(
                "You cannot remove your own account".into(),
            ));
        }
        let users = self.store().list_users(&actor.program).await?;
        let user = users
            .iter()
            .find(|u| &u.id == id)
            .ok_or(AccessError::NotFound("user"))?;
        if !self.store().delete_user(&actor.program, id).await? {
            return Err(AccessError::NotFound("user"));
        }
        self.record(actor, "removed", &format!("user {}", user.email), "")
            .await;
        Ok(())
    }

    // --- API keys ------------------------------------------------------------------------------

    /// Creates a key with `scope`; the returned plain text is its only copy.
    pub async fn create_api_key(
        &self,
        actor: &Actor,
        name: &str,
        scope: KeyScope,
    ) -> AccessResult<(String, ApiKeySummary)> {
        actor.require_admin()?;
        let name = api_key_name(name)?;
        let (key, record) = api_key::new_record(actor.program.clone(), name, scope);
        self.store().insert_api_key(&record).await?;
        let detail = format!("{} ({})", record.prefix, scope.as_str());
        self.record(actor, "created", &format!("API key {name}"), &detail)
            .await;
        let summary = ApiKeySummary {
            id: record.id,
            name: record.name,
            scope,
            prefix: record.prefix,
            created_at: record.created_at,
            last_used_at: None,
            revoked_at: None,
        };
        Ok((key.plain, summary))
    }

    pub async fn list_api_keys(&self, program: &ProgramId) -> AccessResult<Vec<ApiKeySummary>> {
        Ok(self.store().list_api_keys(program).await?)
    }

    /// Revokes a key: refused at once by this process, by others within the key cache's TTL.
    pub async fn revoke_api_key(&self, actor: &Actor, id: &ApiKeyId) -> AccessResult<()> {
        actor.require_admin()?;
        let keys = self.store().list_api_keys(&actor.program).await?;
        let key = keys
            .iter()
            .find(|k| &k.id == id && k.revoked_at.is_none())
            .ok_or(AccessError::NotFound("API key"))?;
        if !self
            .store()
            .revoke_api_key(&actor.program, id, store::now())
            .await?
        {
            return Err(AccessError::NotFound("API key"));
        }
        self.inner.keys.clear();
        self.record(
            actor,
            "revoked",
            &format!("API key {}", key.name),
            &key.prefix,
        )
        .await;
        Ok(())
    }

    /// Who a presented API key acts as (an admin of its program) and what its scope allows, or
    /// `None`.
    pub async fn authenticate_key(
        &self,
        presented: &str,
    ) -> AccessResult<Option<(Actor, KeyScope)>> {
        if !api_key::looks_valid(presented) {
            return Ok(None);
        }
        let hash = api_key::hash(presented);
        if let Some(actor) = self.inner.keys.get(&hash) {
            return Ok(Some(actor));
        }
        let prefix = api_key::display_prefix(presented);
        let candidates = self.store().api_key_candidates(prefix).await?;
        let Some(found) = candidates
            .into_iter()
            .find(|c| api_key::hashes_equal(&c.key_hash, &hash))
        else {
            return Ok(None);
        };
        self.store().touch_api_key(&found.id, store::now()).await?;
        let actor = Actor {
            program: found.program_id,
            name: format!("API key {}", found.name),
            role: Role::Admin,
            user: None,
        };
        self.inner.keys.put(hash, (actor.clone(), found.scope));
        Ok(Some((actor, found.scope)))
    }

    // --- activity ------------------------------------------------------------------------------

    /// Appends to the activity log. A failure to record is logged, not returned: the change it
    /// describes has already happened.
    pub async fn record(&self, actor: &Actor, action: &str, target: &str, detail: &str) {
        record_activity(self.store(), actor, action, target, detail).await;
    }

    pub async fn activity(
        &self,
        program: &ProgramId,
        before: Option<&ActivityId>,
        limit: u32,
    ) -> AccessResult<Vec<ActivityRecord>> {
        Ok(self.store().list_activity(program, before, limit).await?)
    }
}

/// Appends one line to the activity log (shared by the engine and `Access`).
pub async fn record_activity(
    store: &dyn Store,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: &str,
) {
    let entry = ActivityRecord {
        id: ActivityId::generate(),
        program_id: actor.program.clone(),
        actor: actor.name.clone(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail: detail.to_owned(),
        created_at: store::now(),
    };
    if let Err(e) = store.insert_activity(&entry).await {
        tracing::error!(error = %e, action, "could not record activity");
    }
}

/// 32 random bytes, base64url: session cookies and setup links.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Keys recently seen valid, by hash. Keeps the hot ingest path off the database; a key revoked
/// by another process stops working here within `KEY_CACHE_TTL`.
#[derive(Default)]
struct KeyCache {
    entries: Mutex<HashMap<String, (KeyHolder, Instant)>>,
}

/// Who a key acts as, and what its scope allows.
type KeyHolder = (Actor, KeyScope);

const KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

impl KeyCache {
    fn get(&self, hash: &str) -> Option<KeyHolder> {
        let entries = self.entries.lock().expect("key cache");
        entries
            .get(hash)
            .filter(|(_, at)| at.elapsed() < KEY_CACHE_TTL)
            .map(|(a, _)| a.clone())
    }

    fn put(&self, hash: String, actor: KeyHolder) {
        let mut entries = self.entries.lock().expect("key cache");
        if entries.len() > 10_000 {
            entries.retain(|_, (_, at)| at.elapsed() < KEY_CACHE_TTL);
        }
        entries.insert(hash, (actor, Instant::now()));
    }

    fn clear(&self) {
        self.entries.lock().expect("key cache").clear();
    }
}
