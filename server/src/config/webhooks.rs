//! The `[[webhook]]` tables: where alerts are POSTed, which of them, and how.

use std::sync::Arc;

use serde::Deserialize;

use crate::model::Priority;

/// One `[[webhooks]]` table of the configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST, `https://host:port/path` (or `http://`).
    pub url: String,
    /// PEM file of the CA that signed an `https://` receiver's certificate
    /// (a private CA); without it, the public web's CAs.
    #[serde(default)]
    pub ca: Option<std::path::PathBuf>,
    /// Sent in the `secret_header` header, for the receiver to check.
    #[serde(default)]
    pub secret: Option<String>,
    /// The header that carries `secret`.
    #[serde(default = "default_secret_header")]
    pub secret_header: String,
    /// Alerts below this priority are not sent.
    #[serde(default = "default_min_priority")]
    pub min_priority: Priority,
    /// Tries per alert, the first included.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Seconds to wait for an answer.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: u64,
}

fn default_secret_header() -> String {
    "X-Safecity-Secret".into()
}

fn default_min_priority() -> Priority {
    Priority::Low
}

fn default_max_attempts() -> u32 {
    6
}

fn default_timeout_s() -> u64 {
    10
}

impl WebhookConfig {
    /// Checks the values, naming the field.
    pub fn validate(&self, index: usize) -> Result<(), String> {
        let at = format!("webhooks[{index}]");
        let rest = ["https://", "http://"]
            .iter()
            .find_map(|scheme| self.url.strip_prefix(scheme))
            .ok_or_else(|| {
                format!(
                    "{at}.url: {:?} must start with https:// (or http://)",
                    self.url
                )
            })?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(format!("{at}.url: {:?} has no host", self.url));
        }
        if self.ca.is_some() && !self.url.starts_with("https://") {
            return Err(format!(
                "{at}.ca is given but {at}.url {:?} is not https://",
                self.url
            ));
        }
        self.tls(index)?;
        let header_ok = !self.secret_header.is_empty()
            && self
                .secret_header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !header_ok {
            return Err(format!(
                "{at}.secret_header: {:?} is not a header name (letters, digits, - and _)",
                self.secret_header
            ));
        }
        if !(1..=100).contains(&self.max_attempts) {
            return Err(format!("{at}.max_attempts: must be from 1 to 100"));
        }
        if !(1..=300).contains(&self.timeout_s) {
            return Err(format!("{at}.timeout_s: must be from 1 to 300"));
        }
        Ok(())
    }

    /// TLS settings trusting the hook's `ca`, when it has one.
    pub(crate) fn tls(
        &self,
        index: usize,
    ) -> Result<Option<Arc<safecity_core::tls::ClientConfig>>, String> {
        self.ca
            .as_deref()
            .map(|ca| safecity_core::tls::client_trusting(ca, &format!("webhooks[{index}].ca")))
            .transpose()
            .map_err(|e| e.to_string())
    }
}
