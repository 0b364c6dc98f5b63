//! The typed records and the rules about how they are stored together.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Key, Op, Store, StoreError, Table};

/// A customer's isolated space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Random hex id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// The current enrollment token (its hash), if one is active.
    pub enrollment_token: Option<EnrollmentToken>,
    /// Key id of the tenant's online assignment-signing key
    /// (`<data>/keys/tenants/<id>/assignments.pem`).
    pub assignment_key_id: String,
}

/// An active enrollment token; the token itself is shown once and never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentToken {
    /// Hex SHA-256 of the secret part.
    pub secret_sha256: String,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
}

/// What an admin may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Read and change everything in the tenant.
    Full,
    /// Read only.
    ReadOnly,
}

/// What an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApiTokenScope {
    /// Read-only routes.
    Read,
    /// Read and write routes (but not admin or API-token management).
    Full,
}

/// An admin account of one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admin {
    /// The tenant.
    pub tenant: String,
    /// Random hex id.
    pub id: String,
    /// Login name, stored lower-case; unique within the tenant.
    pub email: String,
    /// Role.
    pub role: Role,
    /// The tenant's primary contact (at most one per tenant).
    pub primary: bool,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A login session. Valid until `idle_expires_at` (pushed forward on use) and
/// never after `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The tenant.
    pub tenant: String,
    /// Random hex id (part of the token).
    pub id: String,
    /// The admin who logged in.
    pub admin_id: String,
    /// Hex SHA-256 of the token's secret part.
    pub secret_sha256: String,
    /// Login time.
    pub created_at: DateTime<Utc>,
    /// Last use.
    pub last_seen: DateTime<Utc>,
    /// Inactivity deadline.
    pub idle_expires_at: DateTime<Utc>,
    /// Absolute deadline.
    pub expires_at: DateTime<Utc>,
}

/// A token for a partner application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// The tenant.
    pub tenant: String,
    /// Random hex id (part of the token).
    pub id: String,
    /// What the application is.
    pub name: String,
    /// What it may do.
    pub scope: ApiTokenScope,
    /// Hex SHA-256 of the token's secret part.
    pub secret_sha256: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// The admin who created it.
    pub created_by: String,
    /// Set when revoked; a revoked token never authenticates again.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An enrolled workstation agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// The tenant.
    pub tenant: String,
    /// Random hex id (part of its credential).
    pub id: String,
    /// The SystemID the installer gave the host.
    pub system_id: String,
    /// What identifies the machine itself (hash of its machine id / SMBIOS UUID).
    pub machine_fingerprint: String,
    /// Host name at enrollment.
    pub hostname: String,
    /// Operating system at enrollment.
    pub os: String,
    /// First enrollment.
    pub enrolled_at: DateTime<Utc>,
    /// Last (re-)enrollment.
    pub credential_issued_at: DateTime<Utc>,
    /// Hex SHA-256 of the agent credential's secret part.
    pub credential_sha256: String,
    /// Set when another machine enrolled first with the same SystemID: this
    /// agent is a suspected clone of that one (a separate record, never merged).
    pub clone_of: Option<String>,
}

fn to_value<T: Serialize>(v: &T) -> serde_json::Value {
    // Records are plain structs of strings, enums and dates: serialising cannot fail.
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

fn from_value<T: DeserializeOwned>(table: Table, v: serde_json::Value) -> Result<T, StoreError> {
    serde_json::from_value(v).map_err(|e| StoreError::Corrupt {
        table: table.name(),
        why: e.to_string(),
    })
}

fn email_claim(email: &str) -> String {
    format!("email:{email}")
}

const PRIMARY_CLAIM: &str = "primary";

/// The typed view of a [`Store`].
#[derive(Debug, Clone, Copy)]
pub struct Records<'a> {
    store: &'a dyn Store,
}

impl<'a> Records<'a> {
    /// Wraps a store.
    pub fn new(store: &'a dyn Store) -> Self {
        Self { store }
    }

    fn get<T: DeserializeOwned>(&self, table: Table, key: Key) -> Result<Option<T>, StoreError> {
        self.store
            .get(table, &key)?
            .map(|v| from_value(table, v))
            .transpose()
    }

    fn list<T: DeserializeOwned>(
        &self,
        table: Table,
        tenant: Option<&str>,
    ) -> Result<Vec<T>, StoreError> {
        self.store
            .list(table, tenant)?
            .into_iter()
            .map(|(_, v)| from_value(table, v))
            .collect()
    }

    /// One tenant.
    pub fn tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        self.get(Table::Tenants, Key::new(id, ""))
    }

    /// All tenants, by id.
    pub fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.list(Table::Tenants, None)
    }

    /// Stores a new tenant.
    pub fn insert_tenant(&self, t: &Tenant) -> Result<(), StoreError> {
        self.store.commit(vec![Op::Insert(
            Table::Tenants,
            Key::new(&t.id, ""),
            to_value(t),
        )])
    }

    /// Replaces an existing tenant.
    pub fn update_tenant(&self, t: &Tenant) -> Result<(), StoreError> {
        self.store.commit(vec![Op::Update(
            Table::Tenants,
            Key::new(&t.id, ""),
            to_value(t),
        )])
    }

    /// One admin.
    pub fn admin(&self, tenant: &str, id: &str) -> Result<Option<Admin>, StoreError> {
        self.get(Table::Admins, Key::new(tenant, id))
    }

    /// The admins of a tenant.
    pub fn admins(&self, tenant: &str) -> Result<Vec<Admin>, StoreError> {
        self.list(Table::Admins, Some(tenant))
    }

    /// The admin with this (lower-case) e-mail address.
    pub fn admin_by_email(&self, tenant: &str, email: &str) -> Result<Option<Admin>, StoreError> {
        let claim: Option<serde_json::Value> =
            self.get(Table::Unique, Key::new(tenant, email_claim(email)))?;
        match claim.as_ref().and_then(|c| c.as_str()) {
            Some(id) => self.admin(tenant, id),
            None => Ok(None),
        }
    }

    /// Stores a new admin. Fails with [`StoreError::Conflict`] if the e-mail is
    /// taken in the tenant, or if `admin.primary` and the tenant has a primary.
    pub fn insert_admin(&self, a: &Admin) -> Result<(), StoreError> {
        let mut ops = vec![
            Op::Insert(Table::Admins, Key::new(&a.tenant, &a.id), to_value(a)),
            Op::Insert(
                Table::Unique,
                Key::new(&a.tenant, email_claim(&a.email)),
                serde_json::Value::String(a.id.clone()),
            ),
        ];
        if a.primary {
            ops.push(Op::Insert(
                Table::Unique,
                Key::new(&a.tenant, PRIMARY_CLAIM),
                serde_json::Value::String(a.id.clone()),
            ));
        }
        self.store.commit(ops)
    }

    /// Deletes an admin, its claims and all its sessions, in one transaction.
    pub fn delete_admin(&self, a: &Admin) -> Result<(), StoreError> {
        let mut ops = vec![
            Op::Delete(Table::Admins, Key::new(&a.tenant, &a.id)),
            Op::Delete(Table::Unique, Key::new(&a.tenant, email_claim(&a.email))),
        ];
        if a.primary {
            ops.push(Op::Delete(
                Table::Unique,
                Key::new(&a.tenant, PRIMARY_CLAIM),
            ));
        }
        for s in self.list::<Session>(Table::Sessions, Some(&a.tenant))? {
            if s.admin_id == a.id {
                ops.push(Op::Delete(Table::Sessions, Key::new(&a.tenant, &s.id)));
            }
        }
        self.store.commit(ops)
    }

    /// Replaces an admin (its new password hash) and ends its sessions
    /// except `keep` (the session that changed its own password), in one
    /// transaction.
    pub fn update_admin_ending_sessions(
        &self,
        a: &Admin,
        keep: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut ops = vec![Op::Update(
            Table::Admins,
            Key::new(&a.tenant, &a.id),
            to_value(a),
        )];
        for s in self.list::<Session>(Table::Sessions, Some(&a.tenant))? {
            if s.admin_id == a.id && Some(s.id.as_str()) != keep {
                ops.push(Op::Delete(Table::Sessions, Key::new(&a.tenant, &s.id)));
            }
        }
        self.store.commit(ops)
    }

    /// One session.
    pub fn session(&self, tenant: &str, id: &str) -> Result<Option<Session>, StoreError> {
        self.get(Table::Sessions, Key::new(tenant, id))
    }

    /// Every session of every tenant.
    pub fn all_sessions(&self) -> Result<Vec<Session>, StoreError> {
        self.list(Table::Sessions, None)
    }

    /// Deletes sessions in one transaction.
    pub fn delete_sessions(&self, sessions: &[Session]) -> Result<(), StoreError> {
        self.store.commit(
            sessions
                .iter()
                .map(|s| Op::Delete(Table::Sessions, Key::new(&s.tenant, &s.id)))
                .collect(),
        )
    }

    /// Stores a new session.
    pub fn insert_session(&self, s: &Session) -> Result<(), StoreError> {
        self.store.commit(vec![Op::Insert(
            Table::Sessions,
            Key::new(&s.tenant, &s.id),
            to_value(s),
        )])
    }

    /// Replaces a session (after use).
    pub fn update_session(&self, s: &Session) -> Result<(), StoreError> {
        self.store.commit(vec![Op::Update(
            Table::Sessions,
            Key::new(&s.tenant, &s.id),
            to_value(s),
        )])
    }

    /// Deletes a session.
    pub fn delete_session(&self, tenant: &str, id: &str) -> Result<(), StoreError> {
        self.store
            .commit(vec![Op::Delete(Table::Sessions, Key::new(tenant, id))])
    }

    /// One agent.
    pub fn agent(&self, tenant: &str, id: &str) -> Result<Option<Agent>, StoreError> {
        self.get(Table::Agents, Key::new(tenant, id))
    }

    /// The agents of a tenant.
    pub fn agents(&self, tenant: &str) -> Result<Vec<Agent>, StoreError> {
        self.list(Table::Agents, Some(tenant))
    }

    /// The agent id claiming a uniqueness key (`system:…` or `machine:…`).
    pub fn claim(&self, tenant: &str, claim: &str) -> Result<Option<String>, StoreError> {
        let v: Option<serde_json::Value> = self.get(Table::Unique, Key::new(tenant, claim))?;
        Ok(v.and_then(|v| v.as_str().map(str::to_owned)))
    }

    /// Stores a new agent with its claims; fails with [`StoreError::Conflict`]
    /// if a claim was taken meanwhile.
    pub fn insert_agent(&self, a: &Agent, claims: &[String]) -> Result<(), StoreError> {
        let mut ops = vec![Op::Insert(
            Table::Agents,
            Key::new(&a.tenant, &a.id),
            to_value(a),
        )];
        for c in claims {
            ops.push(Op::Insert(
                Table::Unique,
                Key::new(&a.tenant, c),
                serde_json::Value::String(a.id.clone()),
            ));
        }
        self.store.commit(ops)
    }

    /// Replaces an agent (new credential on re-enrollment).
    pub fn update_agent(&self, a: &Agent) -> Result<(), StoreError> {
        self.store.commit(vec![Op::Update(
            Table::Agents,
            Key::new(&a.tenant, &a.id),
            to_value(a),
        )])
    }

    /// One API token.
    pub fn api_token(&self, tenant: &str, id: &str) -> Result<Option<ApiToken>, StoreError> {
        self.get(Table::ApiTokens, Key::new(tenant, id))
    }

    /// The API tokens of a tenant, revoked ones included.
    pub fn api_tokens(&self, tenant: &str) -> Result<Vec<ApiToken>, StoreError> {
        self.list(Table::ApiTokens, Some(tenant))
    }

    /// Stores a new API token.
    pub fn insert_api_token(&self, t: &ApiToken) -> Result<(), StoreError> {
        self.store.commit(vec![Op::Insert(
            Table::ApiTokens,
            Key::new(&t.tenant, &t.id),
            to_value(t),
        )])
    }

    /// Replaces an API token (to revoke it).
    pub fn update_api_token(&self, t: &ApiToken) -> Result<(), StoreError> {
        self.store.commit(vec![Op::Update(
            Table::ApiTokens,
            Key::new(&t.tenant, &t.id),
            to_value(t),
        )])
    }
}
