//! Bearer tokens and roles.
//!
//! A token is 32 random bytes in hex, shown once when made. Only its
//! SHA-256 is stored, so a copy of the data directory does not give access.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sends events and clips.
    Edge,
    /// Watches alerts in the operations centre.
    Operator,
    /// Searches plate reads.
    Investigator,
    /// Everything, and the camera registry and audit log.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Edge, Role::Operator, Role::Investigator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Edge => "edge",
            Role::Operator => "operator",
            Role::Investigator => "investigator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}; use edge, operator, investigator or admin"))
    }
}

/// A new random token.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The stored form of a token: its SHA-256 in hex.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
        assert_eq!("investigator".parse::<Role>(), Ok(Role::Investigator));
        assert!("root".parse::<Role>().unwrap_err().contains("investigator"));
    }
}
