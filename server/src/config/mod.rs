//! Server settings, from a TOML file and the command line, each checked
//! with a message that names it: the server's own (`ServerConfig`, `[tls]`,
//! `[store]`), `[retention]` (`retention`) and `[[webhooks]]` (`webhooks`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

mod retention;
mod webhooks;

pub use retention::RetentionConfig;
pub use webhooks::WebhookConfig;

/// What the operator set. Every field has a default that works on one
/// machine, so an empty file (or none) is a valid configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Where the embedded store and the blobs live.
    pub data_dir: PathBuf,
    /// Address to serve on.
    pub listen: SocketAddr,
    /// HTTPS: the `[tls]` table (or `--tls-cert` and `--tls-key`).
    pub tls: Option<TlsConfig>,
    /// Serve plain HTTP on an address other than loopback (behind a proxy
    /// that terminates TLS). Without it and without `[tls]`, the server
    /// serves plain HTTP on loopback addresses only.
    pub plain_http: bool,
    /// Seconds a client has to finish the TLS handshake, and then to send
    /// each request's headers (from the handshake or its previous
    /// response's end); then the connection is closed (idle and stalled
    /// clients hold no socket).
    pub header_timeout_s: u64,
    /// Largest event batch accepted, in MiB, before and after gzip.
    pub max_body_mb: usize,
    /// Largest clip accepted, in MiB.
    pub max_clip_mb: usize,
    /// Where alerts are POSTed, as `[[webhooks]]` tables.
    pub webhooks: Vec<WebhookConfig>,
    /// Which database holds the events: the `[store]` table.
    pub store: StoreConfig,
    /// How long each kind of event is kept, and how often the purge runs.
    pub retention: RetentionConfig,
    /// An admin token to accept (its hash is stored). Never read from the
    /// file: it comes from the `SAFECITY_ADMIN_TOKEN` environment variable.
    #[serde(skip)]
    pub admin_token: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from("safecity-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls: None,
            plain_http: false,
            header_timeout_s: 30,
            max_body_mb: 16,
            max_clip_mb: 64,
            webhooks: Vec::new(),
            store: StoreConfig::default(),
            retention: RetentionConfig::default(),
            admin_token: None,
        }
    }
}

impl ServerConfig {
    /// Reads and checks a TOML file.
    pub fn load(path: &Path) -> Result<ServerConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io("cannot read configuration", path, e))?;
        let config: ServerConfig =
            toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but make no sense, naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(Error::Config("data_dir: must not be empty".into()));
        }
        for (field, v, max, unit) in [
            ("max_body_mb", self.max_body_mb as u64, 1024, "MiB"),
            ("max_clip_mb", self.max_clip_mb as u64, 4096, "MiB"),
            ("header_timeout_s", self.header_timeout_s, 3600, "s"),
        ] {
            if v == 0 || v > max {
                return Err(Error::Config(format!(
                    "{field}: {v} is outside 1..={max} {unit}"
                )));
            }
        }
        self.store.validate()?;
        if self.tls.is_none() && !self.plain_http && !self.listen.ip().is_loopback() {
            return Err(Error::Config(format!(
                "listen: {} is not a loopback address and no certificate is given, so bearer \
                 tokens would cross the network in clear text; give --tls-cert FILE and \
                 --tls-key FILE (or [tls] cert and key), or set plain_http = true (--plain-http) \
                 when a proxy in front terminates TLS",
                self.listen
            )));
        }
        for (i, hook) in self.webhooks.iter().enumerate() {
            hook.validate(i).map_err(Error::Config)?;
        }
        self.retention.validate()?;
        if let Some(t) = &self.admin_token {
            if t.len() < 16 {
                return Err(Error::Config(
                    "SAFECITY_ADMIN_TOKEN: use at least 16 characters".into(),
                ));
            }
        }
        Ok(())
    }
}

/// The `[tls]` table: the server's certificate and key, PEM files.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, RSA or EC). Keep it readable by the
    /// server's user only.
    pub key: PathBuf,
}

/// The `[store]` table: which database holds the events. Blobs stay in
/// `data_dir` whichever it is.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `"sqlite"` (embedded, in `data_dir`; the default) or `"postgres"`.
    pub backend: StoreBackend,
    /// The PostgreSQL connection URL, e.g.
    /// `postgres://safecity:PASSWORD@db.internal:5432/safecity`; `--postgres`
    /// and `SAFECITY_POSTGRES_URL` override it.
    pub url: Option<String>,
}

/// A storage backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// SQLite in `data_dir`.
    #[default]
    Sqlite,
    /// A PostgreSQL database at `url`.
    Postgres,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("backend", &self.backend)
            .field("url", &self.url.as_deref().map(redact_url))
            .finish()
    }
}

impl StoreConfig {
    /// PostgreSQL at `url`.
    pub fn postgres(url: impl Into<String>) -> StoreConfig {
        StoreConfig {
            backend: StoreBackend::Postgres,
            url: Some(url.into()),
        }
    }

    fn validate(&self) -> Result<()> {
        if self.backend != StoreBackend::Postgres {
            return Ok(());
        }
        let Some(url) = self.url.as_deref().filter(|u| !u.trim().is_empty()) else {
            return Err(Error::Config(
                "store.url: backend \"postgres\" needs a URL (postgres://USER:PASSWORD@HOST:PORT/DB); or pass --postgres URL or set SAFECITY_POSTGRES_URL".into(),
            ));
        };
        url.parse::<postgres::Config>().map_err(|e| {
            Error::Config(format!(
                "store.url: {} is not a PostgreSQL URL: {e}",
                redact_url(url)
            ))
        })?;
        Ok(())
    }
}

impl ServerConfig {
    /// Where the events are kept, for messages: the data directory, or the
    /// PostgreSQL URL without its password.
    pub fn store_location(&self) -> String {
        match (self.store.backend, &self.store.url) {
            (StoreBackend::Postgres, Some(url)) => {
                format!("PostgreSQL at {}", redact_url(url))
            }
            _ => format!("the data directory {}", self.data_dir.display()),
        }
    }
}

/// `url` with its password replaced by `***`, for messages and logs. Works
/// for URLs (`postgres://user:secret@host/db`, `?password=`) and for
/// `key=value` connection strings.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at_sign) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at_sign];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest_start + colon + 1..rest_start + at_sign, "***");
            }
        }
    }
    // `password=...` as a query parameter or a key=value pair.
    let mut result = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.find("password=") {
        let before_ok = i == 0 || matches!(rest.as_bytes()[i - 1], b'?' | b'&' | b' ' | b'\t');
        result.push_str(&rest[..i + "password=".len()]);
        rest = &rest[i + "password=".len()..];
        if before_ok {
            let end = if let Some(quoted) = rest.strip_prefix('\'') {
                quoted.find('\'').map_or(rest.len(), |j| j + 2)
            } else {
                rest.find(['&', ' ', '\t']).unwrap_or(rest.len())
            };
            result.push_str("***");
            rest = &rest[end..];
        }
    }
    result.push_str(rest);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        for (url, want) in [
            (
                "postgres://safecity:s3cr3t@db.example:5432/safecity",
                "postgres://safecity:***@db.example:5432/safecity",
            ),
            (
                "postgresql://u:p%40ss@h/db?sslmode=disable",
                "postgresql://u:***@h/db?sslmode=disable",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            (
                "postgres://h/db?user=u&password=x&sslmode=disable",
                "postgres://h/db?user=u&password=***&sslmode=disable",
            ),
            (
                "host=h user=u password='a b' dbname=d",
                "host=h user=u password=*** dbname=d",
            ),
            ("host=h password=x", "host=h password=***"),
        ] {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }

    #[test]
    fn the_example_file_parses_and_typos_are_named() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("safecity-server.example.toml");
        let c = ServerConfig::load(&path).unwrap();
        assert_eq!(c.listen.port(), 8443);
        assert!(c.tls.is_some());
        let typo = toml::from_str::<ServerConfig>("datadir = \"x\"").unwrap_err();
        assert!(typo.to_string().contains("datadir"), "{typo}");
        let bad = ServerConfig {
            max_body_mb: 0,
            ..ServerConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_body_mb"));
        let hooks: ServerConfig =
            toml::from_str("[[webhooks]]\nurl = \"https://x.example/a\"\nmin_priority = \"high\"")
                .unwrap();
        assert_eq!(hooks.webhooks[0].min_priority, crate::model::Priority::High);
        hooks.validate().unwrap();
        let ftp: ServerConfig =
            toml::from_str("[[webhooks]]\nurl = \"ftp://x.example/a\"").unwrap();
        let err = ftp.validate().unwrap_err().to_string();
        assert!(err.contains("webhooks[0].url"), "{err}");
        let bad = toml::from_str::<ServerConfig>(
            "[[webhooks]]\nurl = \"http://x\"\nmin_priority = \"urgent\"",
        )
        .unwrap_err();
        assert!(bad.to_string().contains("urgent"), "{bad}");
        assert_eq!(c.store.backend, StoreBackend::Sqlite);
        let pg: ServerConfig = toml::from_str(
            "[store]\nbackend = \"postgres\"\nurl = \"postgres://u:secret@db/safecity\"",
        )
        .unwrap();
        pg.validate().unwrap();
        assert_eq!(
            pg.store_location(),
            "PostgreSQL at postgres://u:***@db/safecity"
        );
        assert!(!format!("{pg:?}").contains("secret"));
        let no_url: ServerConfig = toml::from_str("[store]\nbackend = \"postgres\"").unwrap();
        let err = no_url.validate().unwrap_err().to_string();
        assert!(err.contains("store.url"), "{err}");
        let typo = toml::from_str::<ServerConfig>("[store]\nbackend = \"mysql\"").unwrap_err();
        assert!(typo.to_string().contains("mysql"), "{typo}");
    }
}
