//! Who may call: tokens and the audit log of what they did.

use serde::{Deserialize, Serialize};

use crate::auth::Role;
use crate::error::Result;

/// Who a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub name: String,
    pub role: Role,
    /// When it stops working, ms since 1970; `None`: never.
    pub expires_ms: Option<i64>,
}

/// A stored role, naming the token when it is not one.
pub(crate) fn parse_role(role: &str, name: &str) -> Result<Role> {
    role.parse()
        .map_err(|e| crate::error::Error::Corrupt(format!("token {name:?}: {e}")))
}

/// A stored token as `safecity-server token list` shows it (never the
/// token: only its hash is stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    /// The first 12 hex digits of the token's SHA-256.
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
}

/// One audit record to append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Milliseconds since 1970.
    pub at_ms: i64,
    /// The token's name.
    pub who: String,
    pub role: String,
    /// `METHOD /path` as called.
    pub route: String,
    /// The query string as sent.
    pub query: String,
    pub reason: Option<String>,
    /// How many results were given.
    pub results: Option<u64>,
    /// What a change did, e.g. `alert 7: new -> acknowledged`.
    pub detail: Option<String>,
}

/// A stored audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: i64,
    #[serde(flatten)]
    pub entry: AuditEntry,
}
