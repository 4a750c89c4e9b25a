//! `Access`: the one place that decides who is calling. Console sign-in (throttled, argon2id),
//! database sessions with idle and absolute expiry, the first-run setup link, users, API keys
//! (hashed, compared in constant time, cached briefly) and the admin activity log.

use super::{api_key, password, throttle};
use crate::domain::account::{
    api_key_name, check_new_password, program_name, Email, KeyScope, Role,
};
use crate::domain::ids::{ActivityId, ApiKeyId, ProgramId, UserId};
use crate::domain::ValidationError;
use crate::store::{
    self, ActivityRecord, ApiKeySummary, MemberRecord, ProgramRecord, SessionRecord, Store,
    StoreError, UserRecord,
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

    pub fn require_admin(&self) -> Result<(), AccessError> {
        if self.role.can_manage() {
            Ok(())
        } else {
            Err(AccessError::Forbidden)
        }
    }
}

/// A program a signed-in user can open, with their role in it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramAccess {
    pub id: ProgramId,
    pub name: String,
    pub role: Role,
}

/// A signed-in console user and what they can open. Requests name the program they act in; the
/// user acts there only with the role their membership gives (install admins: admin everywhere).
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub user: UserId,
    pub email: String,
    pub install_admin: bool,
    /// The program the user lands on (their home program, if they can still open it).
    pub home: Option<ProgramId>,
    /// Live (not archived) programs the user can open.
    pub programs: Vec<ProgramAccess>,
}

impl Caller {
    /// The user acting in `program`; `Forbidden` unless they can open it.
    pub fn actor(&self, program: &ProgramId) -> Result<Actor, AccessError> {
        let access = self
            .programs
            .iter()
            .find(|p| &p.id == program)
            .ok_or(AccessError::Forbidden)?;
        Ok(self.acting_as(access.id.clone(), access.role))
    }

    /// Install-wide work (programs): install admins only.
    pub fn install_admin(&self) -> Result<InstallAdmin, AccessError> {
        if !self.install_admin {
            return Err(AccessError::Forbidden);
        }
        Ok(InstallAdmin {
            name: self.email.clone(),
            user: Some(self.user.clone()),
        })
    }

    fn acting_as(&self, program: ProgramId, role: Role) -> Actor {
        Actor {
            program,
            name: self.email.clone(),
            role,
            user: Some(self.user.clone()),
        }
    }
}

/// Someone allowed to manage programs: an install admin, or the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct InstallAdmin {
    name: String,
    user: Option<UserId>,
}

impl InstallAdmin {
    /// An operator at the `herald` command line (trusted: they hold the database).
    pub fn command_line() -> Self {
        Self {
            name: "command line".into(),
            user: None,
        }
    }

    /// As recorded in `program`'s activity log.
    fn in_program(&self, program: &ProgramId) -> Actor {
        Actor {
            program: program.clone(),
            name: self.name.clone(),
            role: Role::Admin,
            user: self.user.clone(),
        }
    }
}

/// A user added to a program: a new account, or an existing one given a role there.
pub struct AddedMember {
    pub member: MemberRecord,
    /// `false` when the e-mail already had an account (its password is left alone).
    pub new_account: bool,
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

/// The outcome of stamping a session's or an API key's last use. The stamp only extends an idle
/// window and tells admins when a key was last used: while the database cannot take writes (the
/// console's banner and `/healthz` say why), it is skipped rather than turning every signed-in
/// page and every keyed read into an error.
fn stamp(written: store::Result<()>) -> AccessResult<()> {
    match written {
        Err(e) if e.is_unavailable() => {
            tracing::debug!(error = %e, "last use not stamped");
            Ok(())
        }
        other => Ok(other?),
    }
}

/// A freshly started session: `token` goes in the cookie and nowhere else.
pub struct NewSession {
    pub token: String,
    pub caller: Caller,
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
    /// `Store::key_refusals` when last looked at (see `notice_key_refusals`).
    refusals: Mutex<Option<(i64, String)>>,
}

impl Access {
    pub fn new(store: Arc<dyn Store>, policy: SessionPolicy, limits: throttle::Limits) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                policy,
                throttle: throttle::Throttle::new(limits),
                keys: KeyCache::default(),
                refusals: Mutex::new(None),
            }),
        }
    }

    /// Looks whether a key was revoked or a program archived or restored since the last look,
    /// by any process (the command line, another Herald on the same PostgreSQL), and if so
    /// forgets the keys this process had found valid, so the next request with one is checked
    /// again. The first look only takes note.
    pub async fn notice_key_refusals(&self) -> AccessResult<()> {
        let now = self.store().key_refusals().await?;
        let mut last = self.inner.refusals.lock().expect("key refusals");
        if last.as_ref().is_some_and(|was| *was != now) {
            self.inner.keys.clear();
        }
        *last = Some(now);
        Ok(())
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
            caller: self.caller_of(user).await?,
            expires_at,
        })
    }

    /// What `user` can open: every live program for an install admin, else their memberships of
    /// live programs.
    async fn caller_of(&self, user: &UserRecord) -> AccessResult<Caller> {
        let programs: Vec<(ProgramRecord, Role)> = if user.install_admin {
            self.store()
                .list_programs()
                .await?
                .into_iter()
                .map(|p| (p, Role::Admin))
                .collect()
        } else {
            self.store().memberships(&user.id).await?
        };
        let programs: Vec<ProgramAccess> = programs
            .into_iter()
            .filter(|(p, _)| p.archived_at.is_none())
            .map(|(p, role)| ProgramAccess {
                id: p.id,
                name: p.name,
                role,
            })
            .collect();
        let home = programs
            .iter()
            .find(|p| p.id == user.program_id)
            .or(programs.first())
            .map(|p| p.id.clone());
        Ok(Caller {
            user: user.id.clone(),
            email: user.email.clone(),
            install_admin: user.install_admin,
            home,
            programs,
        })
    }

    /// The user a session cookie belongs to, if the session is live; extends its idle window.
    pub async fn session(&self, token: &str) -> AccessResult<Option<Caller>> {
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
            stamp(self.store().touch_session(&id_hash, now).await)?;
        }
        Ok(Some(self.caller_of(&user).await?))
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

    /// Creates the first admin (an install admin) with a setup token and signs them in.
    pub async fn complete_setup(
        &self,
        token: &str,
        email: &str,
        password: &str,
    ) -> AccessResult<NewSession> {
        let mut user = self
            .new_user_record(self.store().default_program().await?, email, password)
            .await?;
        user.install_admin = true;
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
            &session.caller.actor(&user.program_id)?,
            "created",
            &format!("user {}", user.email),
            "first admin, with the setup link",
        )
        .await;
        Ok(session)
    }

    // --- users and members -------------------------------------------------------------------

    async fn new_user_record(
        &self,
        program: ProgramId,
        email: &str,
        password: &str,
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
            install_admin: false,
            created_at: store::now(),
        })
    }

    /// Gives `email` `role` in the actor's program: a new account (with `password`) when the
    /// address has none, else the existing account joins the program (its password untouched).
    pub async fn add_member(
        &self,
        actor: &Actor,
        email: &str,
        password: &str,
        role: Role,
    ) -> AccessResult<AddedMember> {
        actor.require_admin()?;
        let address = Email::parse(email)?;
        if let Some(user) = self.store().user_by_email(address.as_str()).await? {
            self.store()
                .set_membership(&actor.program, &user.id, role, store::now())
                .await?;
            self.record(
                actor,
                "added",
                &format!("member {}", user.email),
                role.label(),
            )
            .await;
            return Ok(AddedMember {
                member: MemberRecord { user, role },
                new_account: false,
            });
        }
        let user = self
            .new_user_record(actor.program.clone(), email, password)
            .await?;
        self.store()
            .insert_user(&user, role)
            .await
            .map_err(|e| match e {
                StoreError::Conflict { .. } => {
                    ValidationError::new("email", "A user with this e-mail already exists").into()
                }
                other => AccessError::from(other),
            })?;
        self.record(
            actor,
            "created",
            &format!("user {}", user.email),
            role.label(),
        )
        .await;
        Ok(AddedMember {
            member: MemberRecord { user, role },
            new_account: true,
        })
    }

    pub async fn list_members(&self, program: &ProgramId) -> AccessResult<Vec<MemberRecord>> {
        Ok(self.store().list_members(program).await?)
    }

    /// Takes a user out of the actor's program. Nobody removes themselves, so a program always
    /// keeps the admin doing the removing.
    pub async fn remove_member(&self, actor: &Actor, id: &UserId) -> AccessResult<()> {
        actor.require_admin()?;
        if actor.user.as_ref() == Some(id) {
            return Err(AccessError::Refused(
                "You cannot remove yourself from a program".into(),
            ));
        }
        let members = self.store().list_members(&actor.program).await?;
        let member = members
            .iter()
            .find(|m| &m.user.id == id)
            .ok_or(AccessError::NotFound("user"))?;
        if !self.store().remove_membership(&actor.program, id).await? {
            return Err(AccessError::NotFound("user"));
        }
        self.record(
            actor,
            "removed",
            &format!("member {}", member.user.email),
            "",
        )
        .await;
        Ok(())
    }

    // --- programs ------------------------------------------------------------------------------

    /// Every program, archived ones too (install admins).
    pub async fn list_programs(&self, _admin: &InstallAdmin) -> AccessResult<Vec<ProgramRecord>> {
        Ok(self.store().list_programs().await?)
    }

    /// A program by id, or by name (any case), as the command line names them.
    pub async fn find_program(&self, id_or_name: &str) -> AccessResult<ProgramRecord> {
        let wanted = id_or_name.trim();
        self.store()
            .list_programs()
            .await?
            .into_iter()
            .find(|p| p.id.as_str() == wanted || p.name.eq_ignore_ascii_case(wanted))
            .ok_or(AccessError::NotFound("program"))
    }

    /// Makes `email`'s account an install admin, or not.
    pub async fn set_install_admin(
        &self,
        admin: &InstallAdmin,
        email: &str,
        on: bool,
    ) -> AccessResult<()> {
        let address = Email::parse(email)?;
        let user = self
            .store()
            .user_by_email(address.as_str())
            .await?
            .ok_or(AccessError::NotFound("user"))?;
        self.store().set_install_admin(&user.id, on).await?;
        let action = if on {
            "made install admin"
        } else {
            "no longer install admin"
        };
        self.record(
            &admin.in_program(&user.program_id),
            action,
            &format!("user {}", user.email),
            "",
        )
        .await;
        Ok(())
    }

    async fn program(&self, id: &ProgramId) -> AccessResult<ProgramRecord> {
        self.store()
            .list_programs()
            .await?
            .into_iter()
            .find(|p| &p.id == id)
            .ok_or(AccessError::NotFound("program"))
    }

    pub async fn create_program(
        &self,
        admin: &InstallAdmin,
        name: &str,
    ) -> AccessResult<ProgramRecord> {
        let name = program_name(name)?;
        let program = ProgramRecord {
            id: ProgramId::generate(),
            name: name.to_owned(),
            is_default: false,
            archived_at: None,
            created_at: store::now(),
        };
        let actor = admin.in_program(&program.id);
        self.store()
            .insert_program(&program)
            .await
            .map_err(name_taken)?;
        self.record(&actor, "created", &format!("program {name}"), "")
            .await;
        Ok(program)
    }

    pub async fn rename_program(
        &self,
        admin: &InstallAdmin,
        id: &ProgramId,
        name: &str,
    ) -> AccessResult<()> {
        let actor = admin.in_program(id);
        let name = program_name(name)?;
        let before = self.program(id).await?;
        if !self
            .store()
            .rename_program(id, name)
            .await
            .map_err(name_taken)?
        {
            return Err(AccessError::NotFound("program"));
        }
        self.record(
            &actor,
            "renamed",
            &format!("program {name}"),
            &format!("was {}", before.name),
        )
        .await;
        Ok(())
    }

    /// Archives a program (hidden from the switcher, its API keys stop working; deliveries in
    /// progress finish) or restores it. The default program stays: the command line acts there.
    pub async fn set_program_archived(
        &self,
        admin: &InstallAdmin,
        id: &ProgramId,
        archived: bool,
    ) -> AccessResult<()> {
        let actor = admin.in_program(id);
        let program = self.program(id).await?;
        if archived && program.is_default {
            return Err(AccessError::Refused(
                "The default program cannot be archived".into(),
            ));
        }
        let at = archived.then(store::now);
        self.store().set_program_archived(id, at).await?;
        self.inner.keys.clear();
        let action = if archived { "archived" } else { "restored" };
        self.record(&actor, action, &format!("program {}", program.name), "")
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

    /// Revokes a key: refused at once by this process, by running servers within a second (see
    /// `notice_key_refusals`).
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
        let generation = match self.inner.keys.get(&hash) {
            Ok(actor) => return Ok(Some(actor)),
            Err(generation) => generation,
        };
        let prefix = api_key::display_prefix(presented);
        let candidates = self.store().api_key_candidates(prefix).await?;
        let Some(found) = candidates
            .into_iter()
            .find(|c| api_key::hashes_equal(&c.key_hash, &hash))
        else {
            return Ok(None);
        };
        stamp(self.store().touch_api_key(&found.id, store::now()).await)?;
        let actor = Actor {
            program: found.program_id,
            name: format!("API key {}", found.name),
            role: Role::Admin,
            user: None,
        };
        self.inner
            .keys
            .put(hash, (actor.clone(), found.scope), generation);
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

fn name_taken(e: StoreError) -> AccessError {
    match e {
        StoreError::Conflict { .. } => {
            ValidationError::new("name", "Another program already has this name").into()
        }
        other => AccessError::from(other),
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
    crate::domain::lower_hex(&Sha256::digest(text.as_bytes()))
}

/// Keys recently seen valid, by hash. Keeps the hot ingest path off the database. A key revoked
/// by another process (or its program archived) stops working here at the next look of
/// `Access::notice_key_refusals` (every second in a server), or within `KEY_CACHE_TTL` at most.
#[derive(Default)]
struct KeyCache {
    entries: Mutex<CachedKeys>,
}

#[derive(Default)]
struct CachedKeys {
    by_hash: HashMap<String, (KeyHolder, Instant)>,
    /// Counts the clears: a key read from the database before a clear is not cached after it
    /// (it may be the very key the clear was for).
    generation: u64,
}

/// Who a key acts as, and what its scope allows.
type KeyHolder = (Actor, KeyScope);

const KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

impl KeyCache {
    /// The key's holder while it is cached, or else the generation to `put` it under once the
    /// database has said it is valid.
    fn get(&self, hash: &str) -> Result<KeyHolder, u64> {
        let entries = self.entries.lock().expect("key cache");
        entries
            .by_hash
            .get(hash)
            .filter(|(_, at)| at.elapsed() < KEY_CACHE_TTL)
            .map(|(a, _)| a.clone())
            .ok_or(entries.generation)
    }

    /// Caches a key found valid, unless the cache was cleared since `generation` was read.
    fn put(&self, hash: String, actor: KeyHolder, generation: u64) {
        let mut entries = self.entries.lock().expect("key cache");
        if entries.generation != generation {
            return;
        }
        if entries.by_hash.len() > 10_000 {
            entries
                .by_hash
                .retain(|_, (_, at)| at.elapsed() < KEY_CACHE_TTL);
        }
        entries.by_hash.insert(hash, (actor, Instant::now()));
    }

    fn clear(&self) {
        let mut entries = self.entries.lock().expect("key cache");
        entries.by_hash.clear();
        entries.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key the database said was valid just before the cache was cleared (a revocation seen
    /// meanwhile) is not cached afterwards: it would stay valid here for a minute.
    #[test]
    fn a_key_read_before_a_clear_is_not_cached_after_it() {
        let cache = KeyCache::default();
        let holder = || {
            (
                Actor {
                    program: ProgramId::generate(),
                    name: "API key crm".into(),
                    role: Role::Admin,
                    user: None,
                },
                KeyScope::Admin,
            )
        };
        let before = cache.get("hash").unwrap_err();
        cache.clear();
        cache.put("hash".into(), holder(), before);
        let now = cache.get("hash").expect_err("cached across a clear");
        assert_ne!(now, before);
        cache.put("hash".into(), holder(), now);
        assert!(cache.get("hash").is_ok());
    }
}
