//! Who may use Herald: console users, their sessions, first-run setup tokens, API keys and the
//! admin activity log. A separate trait from the delivery side of the store (every backend
//! implements both; `Store` requires this one), written once for both backends by
//! `impl_access_store!`.

use super::Result;
use crate::domain::account::{KeyScope, Role};
use crate::domain::ids::{ActivityId, ApiKeyId, ProgramId, UserId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A console account. `password_hash` is an argon2id PHC string. What the user may do in a
/// program comes from their membership of it (or from `install_admin`).
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub id: UserId,
    /// The program the user lands on after signing in.
    pub program_id: ProgramId,
    /// Lower-cased.
    pub email: String,
    pub password_hash: String,
    /// Manages programs and users, and acts as an admin of every program.
    pub install_admin: bool,
    pub created_at: DateTime<Utc>,
}

/// A loyalty program: webhooks, deliveries, the audit log, API keys and activity belong to one.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramRecord {
    pub id: ProgramId,
    pub name: String,
    /// The program made at first start (where `herald` commands act unless told otherwise).
    pub is_default: bool,
    /// Archived programs are hidden from the switcher and their API keys stop working.
    pub archived_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A user's role in one program.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberRecord {
    pub user: UserRecord,
    pub role: Role,
}

/// A console session; only a hash of the cookie's token is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub id_hash: String,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// The absolute end of the session, however active it is.
    pub expires_at: DateTime<Utc>,
}

/// An API key as lists show it (no hash).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeySummary {
    pub id: ApiKeyId,
    pub name: String,
    pub scope: KeyScope,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A live key whose prefix matches a presented key: the caller compares `key_hash` itself, in
/// constant time.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyCandidate {
    pub id: ApiKeyId,
    pub program_id: ProgramId,
    pub name: String,
    pub scope: KeyScope,
    pub key_hash: String,
}

/// One line of the admin activity log.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRecord {
    pub id: ActivityId,
    pub program_id: ProgramId,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
pub trait AccessStore: Send + Sync + 'static {
    // --- users ---------------------------------------------------------------------------------
    async fn count_users(&self) -> Result<i64>;
    /// Creates a user with `role` in their home program, in one transaction. `Conflict { field:
    /// "email" }` when the address is taken (in any case).
    async fn insert_user(&self, user: &UserRecord, role: Role) -> Result<()>;
    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>>;
    async fn set_install_admin(&self, user: &UserId, on: bool) -> Result<()>;

    // --- programs and memberships --------------------------------------------------------------
    /// Every program, archived ones too: the default first, then by name.
    async fn list_programs(&self) -> Result<Vec<ProgramRecord>>;
    /// `Conflict { field: "name" }` when another program has the name (in any case).
    async fn insert_program(&self, program: &ProgramRecord) -> Result<()>;
    /// `false` when there is no such program; `Conflict { field: "name" }` as above.
    async fn rename_program(&self, id: &ProgramId, name: &str) -> Result<bool>;
    /// Archives (`Some`) or restores (`None`) a program; `false` when there is no such program.
    async fn set_program_archived(&self, id: &ProgramId, at: Option<DateTime<Utc>>)
        -> Result<bool>;
    /// The programs `user` is a member of, with their role in each.
    async fn memberships(&self, user: &UserId) -> Result<Vec<(ProgramRecord, Role)>>;
    /// A program's members, by e-mail.
    async fn list_members(&self, program: &ProgramId) -> Result<Vec<MemberRecord>>;
    /// Gives `user` `role` in `program` (adding them, or changing the role they had).
    async fn set_membership(
        &self,
        program: &ProgramId,
        user: &UserId,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// Takes `user` out of `program`; `false` when they were not a member.
    async fn remove_membership(&self, program: &ProgramId, user: &UserId) -> Result<bool>;

    // --- first run -----------------------------------------------------------------------------
    async fn add_setup_token(&self, token_hash: &str, now: DateTime<Utc>) -> Result<()>;
    async fn setup_token_exists(&self, token_hash: &str) -> Result<bool>;
    /// Creates `user` if `token_hash` names a setup token and no user exists yet, consuming every
    /// setup token, all in one transaction. `false` (nothing written) otherwise.
    async fn create_first_user(&self, token_hash: &str, user: &UserRecord) -> Result<bool>;

    // --- sessions ------------------------------------------------------------------------------
    async fn insert_session(&self, session: &SessionRecord) -> Result<()>;
    async fn session(&self, id_hash: &str) -> Result<Option<(SessionRecord, UserRecord)>>;
    async fn touch_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<()>;
    async fn delete_session(&self, id_hash: &str) -> Result<()>;
    /// Removes sessions past their absolute end or idle since before `idle_since`.
    async fn delete_stale_sessions(
        &self,
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> Result<u64>;

    // --- API keys ------------------------------------------------------------------------------
    async fn insert_api_key(&self, key: &super::ApiKeyRecord) -> Result<()>;
    async fn list_api_keys(&self, program: &ProgramId) -> Result<Vec<ApiKeySummary>>;
    /// Unrevoked keys whose display prefix is `prefix`.
    async fn api_key_candidates(&self, prefix: &str) -> Result<Vec<ApiKeyCandidate>>;
    async fn touch_api_key(&self, id: &ApiKeyId, now: DateTime<Utc>) -> Result<()>;
    /// Revokes a live key; `false` when there is no such live key.
    async fn revoke_api_key(
        &self,
        program: &ProgramId,
        id: &ApiKeyId,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// What decides which keys are refused, as far as other processes change it: how many keys
    /// are revoked (a key is never restored nor deleted, so the count only grows) and which
    /// programs are archived (few).
    async fn key_refusals(&self) -> Result<(i64, String)>;

    // --- activity ------------------------------------------------------------------------------
    async fn insert_activity(&self, entry: &ActivityRecord) -> Result<()>;
    /// Newest first; `before` continues after the last entry of a previous page.
    async fn list_activity(
        &self,
        program: &ProgramId,
        before: Option<&ActivityId>,
        limit: u32,
    ) -> Result<Vec<ActivityRecord>>;
}

pub(super) mod sql {
    pub const COUNT_USERS: &str = "SELECT COUNT(*) FROM users";
    pub const INSERT_USER: &str = "INSERT INTO users (id, program_id, email, password_hash, \
        install_admin, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
    pub const USER_COLUMNS: &str =
        "u.id, u.program_id, u.email, u.password_hash, u.install_admin, u.created_at";
    pub const PROGRAM_COLUMNS: &str = "p.id, p.name, p.is_default, p.archived_at, p.created_at";
    pub const PROGRAM_ORDER: &str = "p.is_default DESC, lower(p.name), p.id";
    pub const INSERT_PROGRAM: &str = "INSERT INTO programs (id, name, is_default, archived_at, \
        created_at) VALUES ($1, $2, $3, $4, $5)";
    pub const SET_INSTALL_ADMIN: &str = "UPDATE users SET install_admin = $2 WHERE id = $1";
    pub const RENAME_PROGRAM: &str = "UPDATE programs SET name = $2 WHERE id = $1";
    pub const ARCHIVE_PROGRAM: &str = "UPDATE programs SET archived_at = $2 WHERE id = $1";
    pub const SET_MEMBERSHIP: &str = "INSERT INTO program_members (program_id, user_id, role, \
        created_at) VALUES ($1, $2, $3, $4) \
        ON CONFLICT (program_id, user_id) DO UPDATE SET role = excluded.role";
    pub const REMOVE_MEMBERSHIP: &str =
        "DELETE FROM program_members WHERE program_id = $1 AND user_id = $2";
    pub const ADD_SETUP_TOKEN: &str =
        "INSERT INTO setup_tokens (token_hash, created_at) VALUES ($1, $2)";
    pub const SETUP_TOKEN_EXISTS: &str = "SELECT COUNT(*) FROM setup_tokens WHERE token_hash = $1";
    pub const DELETE_SETUP_TOKENS: &str = "DELETE FROM setup_tokens";
    pub const INSERT_SESSION: &str = "INSERT INTO sessions (id_hash, user_id, created_at, \
        last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5)";
    pub const TOUCH_SESSION: &str = "UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1";
    pub const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id_hash = $1";
    pub const DELETE_STALE_SESSIONS: &str =
        "DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2";
    pub const INSERT_API_KEY: &str =
        "INSERT INTO api_keys (id, program_id, name, prefix, key_hash, \
        created_at, scope) VALUES ($1, $2, $3, $4, $5, $6, $7)";
    pub const LIST_API_KEYS: &str = "SELECT id, name, prefix, created_at, last_used_at, revoked_at, scope \
        FROM api_keys WHERE program_id = $1 ORDER BY revoked_at IS NOT NULL, created_at DESC, id DESC";
    /// Keys of archived programs are not candidates: archiving a program stops its keys.
    pub const API_KEY_CANDIDATES: &str =
        "SELECT k.id, k.program_id, k.name, k.key_hash, k.scope FROM api_keys k \
        JOIN programs p ON p.id = k.program_id \
        WHERE k.prefix = $1 AND k.revoked_at IS NULL AND p.archived_at IS NULL";
    pub const TOUCH_API_KEY: &str = "UPDATE api_keys SET last_used_at = $2 WHERE id = $1";
    pub const REVOKE_API_KEY: &str = "UPDATE api_keys SET revoked_at = $3 \
        WHERE program_id = $1 AND id = $2 AND revoked_at IS NULL";
    pub const KEY_REFUSALS: &str = "SELECT (SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NOT NULL), \
        COALESCE((SELECT string_agg(id, ',' ORDER BY id) FROM programs WHERE archived_at IS NOT NULL), '')";
    pub const INSERT_ACTIVITY: &str =
        "INSERT INTO activity (id, program_id, actor, action, target, \
        detail, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
    pub const ACTIVITY_COLUMNS: &str = "id, program_id, actor, action, target, detail, created_at";
}

/// Row shapes both backends decode.
pub(super) mod rows {
    use super::*;
    use crate::store::decode::from_row;
    use crate::store::StoreError;

    pub struct UserRow {
        id: String,
        program_id: String,
        email: String,
        password_hash: String,
        install_admin: bool,
        created_at: DateTime<Utc>,
    }
    from_row!(UserRow {
        id,
        program_id,
        email,
        password_hash,
        install_admin,
        created_at
    });

    impl TryFrom<UserRow> for UserRecord {
        type Error = StoreError;
        fn try_from(r: UserRow) -> Result<Self> {
            Ok(Self {
                install_admin: r.install_admin,
                id: UserId::from_trusted(r.id),
                program_id: ProgramId::from_trusted(r.program_id),
                email: r.email,
                password_hash: r.password_hash,
                created_at: r.created_at,
            })
        }
    }

    pub fn role_of(raw: &str) -> Result<Role> {
        Role::parse(raw).ok_or_else(|| StoreError::Corrupt(format!("member role {raw:?}")))
    }

    pub struct ProgramRow {
        id: String,
        name: String,
        is_default: bool,
        archived_at: Option<DateTime<Utc>>,
        created_at: DateTime<Utc>,
    }
    from_row!(ProgramRow {
        id,
        name,
        is_default,
        archived_at,
        created_at
    });

    impl From<ProgramRow> for ProgramRecord {
        fn from(r: ProgramRow) -> Self {
            Self {
                id: ProgramId::from_trusted(r.id),
                name: r.name,
                is_default: r.is_default,
                archived_at: r.archived_at,
                created_at: r.created_at,
            }
        }
    }

    pub struct ProgramRoleRow {
        program: ProgramRow,
        role: String,
    }
    from_row!(ProgramRoleRow { role } flatten { program });

    impl TryFrom<ProgramRoleRow> for (ProgramRecord, Role) {
        type Error = StoreError;
        fn try_from(r: ProgramRoleRow) -> Result<Self> {
            Ok((r.program.into(), role_of(&r.role)?))
        }
    }

    pub struct MemberRow {
        user: UserRow,
        role: String,
    }
    from_row!(MemberRow { role } flatten { user });

    impl TryFrom<MemberRow> for MemberRecord {
        type Error = StoreError;
        fn try_from(r: MemberRow) -> Result<Self> {
            Ok(Self {
                role: role_of(&r.role)?,
                user: r.user.try_into()?,
            })
        }
    }

    pub struct SessionUserRow {
        id_hash: String,
        session_created_at: DateTime<Utc>,
        last_seen_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        user: UserRow,
    }
    from_row!(SessionUserRow { id_hash, session_created_at, last_seen_at, expires_at } flatten { user });

    impl TryFrom<SessionUserRow> for (SessionRecord, UserRecord) {
        type Error = StoreError;
        fn try_from(r: SessionUserRow) -> Result<Self> {
            let user = UserRecord::try_from(r.user)?;
            Ok((
                SessionRecord {
                    id_hash: r.id_hash,
                    user_id: user.id.clone(),
                    created_at: r.session_created_at,
                    last_seen_at: r.last_seen_at,
                    expires_at: r.expires_at,
                },
                user,
            ))
        }
    }

    pub type ApiKeyRow = (
        String,
        String,
        String,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
        String,
    );

    pub fn api_key_summary(
        (id, name, prefix, created_at, last_used_at, revoked_at, scope): ApiKeyRow,
    ) -> ApiKeySummary {
        ApiKeySummary {
            id: ApiKeyId::from_trusted(id),
            name,
            scope: scope_of(&scope),
            prefix,
            created_at,
            last_used_at,
            revoked_at,
        }
    }

    /// A stored scope; anything unknown reads as the narrower `ingest`.
    pub fn scope_of(raw: &str) -> KeyScope {
        KeyScope::parse(raw).unwrap_or(KeyScope::Ingest)
    }

    pub type ActivityRow = (
        String,
        String,
        String,
        String,
        String,
        String,
        DateTime<Utc>,
    );

    pub fn activity(
        (id, program_id, actor, action, target, detail, created_at): ActivityRow,
    ) -> ActivityRecord {
        ActivityRecord {
            id: ActivityId::from_trusted(id),
            program_id: ProgramId::from_trusted(program_id),
            actor,
            action,
            target,
            detail,
            created_at,
        }
    }
}

/// `AccessStore` for a backend type with `writer` and `reader` pools of database `$db`.
macro_rules! impl_access_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::access::AccessStore for $store {
            async fn count_users(&self) -> Result<i64> {
                Ok(sqlx::query_scalar(access::sql::COUNT_USERS)
                    .fetch_one(self.writer()?)
                    .await?)
            }

            async fn insert_user(&self, u: &access::UserRecord, role: $crate::domain::account::Role) -> Result<()> {
                let mut tx = self.writer()?.begin().await?;
                Self::insert_user_in(&mut tx, u, role).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn user_by_email(&self, email: &str) -> Result<Option<access::UserRecord>> {
                let row: Option<access::rows::UserRow> = sqlx::query_as(&format!(
                    "SELECT {} FROM users u WHERE lower(u.email) = lower($1)",
                    access::sql::USER_COLUMNS
                ))
                .bind(email)
                .fetch_optional(&self.reader)
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn set_install_admin(&self, user: &UserId, on: bool) -> Result<()> {
                sqlx::query(access::sql::SET_INSTALL_ADMIN)
                    .bind(user.as_str())
                    .bind(on)
                    .execute(self.writer()?)
                    .await?;
                Ok(())
            }

            async fn list_programs(&self) -> Result<Vec<access::ProgramRecord>> {
                let rows: Vec<access::rows::ProgramRow> = sqlx::query_as(&format!(
                    "SELECT {} FROM programs p ORDER BY {}",
                    access::sql::PROGRAM_COLUMNS,
                    access::sql::PROGRAM_ORDER
                ))
                .fetch_all(&self.reader)
                .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn insert_program(&self, p: &access::ProgramRecord) -> Result<()> {
                sqlx::query(access::sql::INSERT_PROGRAM)
                    .bind(p.id.as_str())
                    .bind(&p.name)
                    .bind(p.is_default)
                    .bind(p.archived_at)
                    .bind(p.created_at)
                    .execute(self.writer()?)
                    .await
                    .map_err(|e| super::conflict_on_unique(e, "name"))?;
                Ok(())
            }

            async fn rename_program(&self, id: &ProgramId, name: &str) -> Result<bool> {
                let done = sqlx::query(access::sql::RENAME_PROGRAM)
                    .bind(id.as_str())
                    .bind(name)
                    .execute(self.writer()?)
                    .await
                    .map_err(|e| super::conflict_on_unique(e, "name"))?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_program_archived(
                &self,
                id: &ProgramId,
                at: Option<DateTime<Utc>>,
            ) -> Result<bool> {
                let done = sqlx::query(access::sql::ARCHIVE_PROGRAM)
                    .bind(id.as_str())
                    .bind(at)
                    .execute(self.writer()?)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn memberships(
                &self,
                user: &UserId,
            ) -> Result<Vec<(access::ProgramRecord, $crate::domain::account::Role)>> {
                let rows: Vec<access::rows::ProgramRoleRow> = sqlx::query_as(&format!(
                    "SELECT {}, m.role FROM program_members m \
                     JOIN programs p ON p.id = m.program_id WHERE m.user_id = $1 ORDER BY {}",
                    access::sql::PROGRAM_COLUMNS,
                    access::sql::PROGRAM_ORDER
                ))
                .bind(user.as_str())
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn list_members(
                &self,
                program: &ProgramId,
            ) -> Result<Vec<access::MemberRecord>> {
                let rows: Vec<access::rows::MemberRow> = sqlx::query_as(&format!(
                    "SELECT {}, m.role FROM program_members m JOIN users u ON u.id = m.user_id \
                     WHERE m.program_id = $1 ORDER BY u.email",
                    access::sql::USER_COLUMNS
                ))
                .bind(program.as_str())
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn set_membership(
                &self,
                program: &ProgramId,
                user: &UserId,
                role: $crate::domain::account::Role,
                now: DateTime<Utc>,
            ) -> Result<()> {
                sqlx::query(access::sql::SET_MEMBERSHIP)
                    .bind(program.as_str())
                    .bind(user.as_str())
                    .bind(role.as_str())
                    .bind(now)
                    .execute(self.writer()?)
                    .await?;
                Ok(())
            }

            async fn remove_membership(&self, program: &ProgramId, user: &UserId) -> Result<bool> {
                let done = sqlx::query(access::sql::REMOVE_MEMBERSHIP)
                    .bind(program.as_str())
                    .bind(user.as_str())
                    .execute(self.writer()?)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn add_setup_token(&self, token_hash: &str, now: DateTime<Utc>) -> Result<()> {
                sqlx::query(access::sql::ADD_SETUP_TOKEN)
                    .bind(token_hash)
                    .bind(now)
                    .execute(self.writer()?)
                    .await?;
                Ok(())
            }

            async fn setup_token_exists(&self, token_hash: &str) -> Result<bool> {
                let n: i64 = sqlx::query_scalar(access::sql::SETUP_TOKEN_EXISTS)
                    .bind(token_hash)
                    .fetch_one(self.writer()?)
                    .await?;
                Ok(n > 0)
            }

            async fn create_first_user(
                &self,
                token_hash: &str,
                user: &access::UserRecord,
            ) -> Result<bool> {
                let mut tx = self.writer()?.begin().await?;
                let tokens: i64 = sqlx::query_scalar(access::sql::SETUP_TOKEN_EXISTS)
                    .bind(token_hash)
                    .fetch_one(&mut *tx)
                    .await?;
                let users: i64 = sqlx::query_scalar(access::sql::COUNT_USERS)
                    .fetch_one(&mut *tx)
                    .await?;
                if tokens == 0 || users > 0 {
                    return Ok(false);
                }
                Self::insert_user_in(&mut tx, user, $crate::domain::account::Role::Admin).await?;
                sqlx::query(access::sql::DELETE_SETUP_TOKENS)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn insert_session(&self, s: &access::SessionRecord) -> Result<()> {
                sqlx::query(access::sql::INSERT_SESSION)
                    .bind(&s.id_hash)
                    .bind(s.user_id.as_str())
                    .bind(s.created_at)
                    .bind(s.last_seen_at)
                    .bind(s.expires_at)
                    .execute(self.writer()?)
                    .await?;
                Ok(())
            }

            async fn session(
                &self,
                id_hash: &str,
            ) -> Result<Option<(access::SessionRecord, access::UserRecord)>> {
                let row: Option<access::rows::SessionUserRow> = sqlx::query_as(&format!(
                    "SELECT s.id_hash, s.created_at AS session_created_at, s.last_seen_at, \
                     s.expires_at, {} FROM sessions s JOIN users u ON u.id = s.user_id \
                     WHERE s.id_hash = $1",
                    access::sql::USER_COLUMNS
                ))
                .bind(id_hash)
                .fetch_optional(&self.reader)
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn touch_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<()> {
                sqlx::query(access::sql::TOUCH_SESSION)
                    .bind(id_hash)
                    .bind(now)
                    .execute(self.writer()?)
                    .await?;
                Ok(())
            }

            async fn delete_session(&self, id_hash: &str) -> Result<()> {
                sqlx::query(access::sql::DELETE_SESSION)
                    .bind(id_hash)
                    .execute(self.writer()?)
                    .await?;
                Ok(())
            }

            async fn delete_stale_sessions(
                &self,
                now: DateTime<Utc>,
                idle_since: DateTime<Utc>,
            ) -> Result<u64> {
                let done = sqlx::query(access::sql::DELETE_STALE_SESSIONS)
                    .bind(now)
                    .bind(idle_since)
                    .execute(self.writer()?)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn insert_api_key(&self, k: &ApiKeyRecord) -> Result<()> {
                sqlx::query(access::sql::INSERT_API_KEY)
                    .bind(k.id.as_str())
                    .bind(k.program_id.as_str())
                    .bind(&k.name)
                    .bind(&k.prefix)
                    .bind(&k.key_hash)
                    .bind(k.created_at)
                    .bind(k.scope.as_str())
                    .execute(self.writer()?)
                    .await?;
                Ok(())
            }

            async fn list_api_keys(
                &self,
                program: &ProgramId,
            ) -> Result<Vec<access::ApiKeySummary>> {
                let rows: Vec<access::rows::ApiKeyRow> = sqlx::query_as(access::sql::LIST_API_KEYS)
                    .bind(program.as_str())
                    .fetch_all(&self.reader)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(access::rows::api_key_summary)
                    .collect())
            }

            async fn api_key_candidates(
                &self,
                prefix: &str,
            ) -> Result<Vec<access::ApiKeyCandidate>> {
                let rows: Vec<(String, String, String, String, String)> =
                    sqlx::query_as(access::sql::API_KEY_CANDIDATES)
                        .bind(prefix)
                        .fetch_all(&self.reader)
                        .await?;
                Ok(rows
                    .into_iter()
                    .map(
                        |(id, program_id, name, key_hash, scope)| access::ApiKeyCandidate {
                            id: ApiKeyId::from_trusted(id),
                            program_id: ProgramId::from_trusted(program_id),
                            name,
                            scope: access::rows::scope_of(&scope),
                            key_hash,
                        },
                    )
                    .collect())
            }

            async fn touch_api_key(&self, id: &ApiKeyId, now: DateTime<Utc>) -> Result<()> {
                sqlx::query(access::sql::TOUCH_API_KEY)
                    .bind(id.as_str())
                    .bind(now)
                    .execute(self.writer()?)
                    .await?;
                Ok(())
            }

            async fn revoke_api_key(
                &self,
                program: &ProgramId,
                id: &ApiKeyId,
                now: DateTime<Utc>,
            ) -> Result<bool> {
                let done = sqlx::query(access::sql::REVOKE_API_KEY)
                    .bind(program.as_str())
                    .bind(id.as_str())
                    .bind(now)
                    .execute(self.writer()?)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn key_refusals(&self) -> Result<(i64, String)> {
                Ok(sqlx::query_as(access::sql::KEY_REFUSALS)
                    .fetch_one(&self.reader)
                    .await?)
            }

            async fn insert_activity(&self, a: &access::ActivityRecord) -> Result<()> {
                sqlx::query(access::sql::INSERT_ACTIVITY)
                    .bind(a.id.as_str())
                    .bind(a.program_id.as_str())
                    .bind(&a.actor)
                    .bind(&a.action)
                    .bind(&a.target)
                    .bind(&a.detail)
                    .bind(a.created_at)
                    .execute(self.writer()?)
                    .await?;
                Ok(())
            }

            async fn list_activity(
                &self,
                program: &ProgramId,
                before: Option<&ActivityId>,
                limit: u32,
            ) -> Result<Vec<access::ActivityRecord>> {
                // Ids are time-ordered (UUIDv7), so they page on their own.
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {} FROM activity WHERE program_id = ",
                    access::sql::ACTIVITY_COLUMNS
                ));
                qb.push_bind(program.as_str().to_owned());
                if let Some(before) = before {
                    qb.push(" AND id < ").push_bind(before.as_str().to_owned());
                }
                qb.push(" ORDER BY id DESC LIMIT ")
                    .push_bind(i64::from(limit.clamp(1, 500)));
                let rows: Vec<access::rows::ActivityRow> =
                    qb.build_query_as().fetch_all(&self.reader).await?;
                Ok(rows.into_iter().map(access::rows::activity).collect())
            }
        }

        impl $store {
            /// Inserts a user and their membership of their home program.
            async fn insert_user_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                u: &access::UserRecord,
                role: $crate::domain::account::Role,
            ) -> Result<()> {
                sqlx::query(access::sql::INSERT_USER)
                    .bind(u.id.as_str())
                    .bind(u.program_id.as_str())
                    .bind(&u.email)
                    .bind(&u.password_hash)
                    .bind(u.install_admin)
                    .bind(u.created_at)
                    .execute(&mut **tx)
                    .await
                    .map_err(|e| super::conflict_on_unique(e, "email"))?;
                sqlx::query(access::sql::SET_MEMBERSHIP)
                    .bind(u.program_id.as_str())
                    .bind(u.id.as_str())
                    .bind(role.as_str())
                    .bind(u.created_at)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_access_store;
