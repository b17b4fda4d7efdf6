//! TLS to PostgreSQL, as libpq's `sslmode` and `sslrootcert` in the URL
//! ask for it (`?sslmode=verify-full&sslrootcert=/etc/safecity/pg-ca.pem`,
//! or the same as `key=value` words):
//!
//! | sslmode                   | without sslrootcert              | with sslrootcert         |
//! |---------------------------|----------------------------------|--------------------------|
//! | `disable`                 | plain                            | plain                    |
//! | `prefer` (the default)    | TLS if offered, not authenticated | TLS if offered, verified |
//! | `require`                 | TLS, not authenticated           | TLS, verified            |
//! | `verify-ca`, `verify-full`| refused: name the CA             | TLS, verified            |
//!
//! "Verified" is `verify-full`: the certificate must chain to the CA in
//! `sslrootcert` and name the host connected to (rustls has no check of the
//! chain alone, so `verify-ca` is as strict). The PostgreSQL client parses
//! neither `verify-*` nor `sslrootcert`; they are taken out of the URL
//! here and `require` is passed on in their place.

use std::path::PathBuf;

use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{Error, Result};

/// How connections are made.
#[derive(Clone)]
pub(super) enum Connector {
    Plain,
    Tls(MakeRustlsConnect),
}

/// The connection string for the PostgreSQL client, and how to connect.
/// `redacted` is the URL without its password, for errors.
pub(super) fn split(url: &str, redacted: &str) -> Result<(String, Connector)> {
    let (rest, mode, root) = take_tls_words(url);
    let config_error = |what: String| Error::Config(format!("store.url {redacted}: {what}"));
    let mode = mode.unwrap_or_else(|| "prefer".to_owned());
    let verify = match mode.as_str() {
        "disable" => return Ok((with_mode(&rest, "disable"), Connector::Plain)),
        "prefer" | "require" => false,
        "verify-ca" | "verify-full" => true,
        other => {
            return Err(config_error(format!(
                "sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"
            )))
        }
    };
    let tls = match (&root, verify) {
        (Some(root), _) => safecity_core::tls::client_trusting(root, "sslrootcert"),
        (None, false) => safecity_core::tls::client_unverified(),
        (None, true) => {
            return Err(config_error(format!(
                "sslmode={mode} needs sslrootcert=FILE, the PEM file of the CA that signed \
                 the database's certificate"
            )))
        }
    }
    .map_err(|e| config_error(e.to_string()))?;
    let passed = if verify { "require" } else { mode.as_str() };
    let connector = Connector::Tls(MakeRustlsConnect::new((*tls).clone()));
    Ok((with_mode(&rest, passed), connector))
}

/// `url` without its `sslmode` and `sslrootcert`, and their values.
fn take_tls_words(url: &str) -> (String, Option<String>, Option<PathBuf>) {
    let (mut mode, mut root) = (None, None);
    let mut take = |key: &str, value: String| match key {
        "sslmode" => {
            mode = Some(value);
            false
        }
        "sslrootcert" => {
            root = Some(PathBuf::from(value));
            false
        }
        _ => true,
    };
    let rest = if url.contains("://") {
        match url.split_once('?') {
            Some((base, query)) => {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|pair| {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        let value: String = form_urlencoded::parse(format!("v={v}").as_bytes())
                            .next()
                            .map(|(_, v)| v.into_owned())
                            .unwrap_or_default();
                        take(k, value)
                    })
                    .collect();
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
            None => url.to_owned(),
        }
    } else {
        url.split_whitespace()
            .filter(|word| {
                let (k, v) = word.split_once('=').unwrap_or((word, ""));
                take(k.trim(), v.trim().to_owned())
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    (rest, mode, root)
}

/// `url` with `sslmode=mode` added.
fn with_mode(url: &str, mode: &str) -> String {
    if url.contains("://") {
        let joiner = if url.contains('?') { '&' } else { '?' };
        format!("{url}{joiner}sslmode={mode}")
    } else {
        format!("{url} sslmode={mode}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_words_are_taken_from_urls_and_key_value_strings() {
        let (rest, mode, root) =
            take_tls_words("postgres://u@db:5432/s?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x");
        assert_eq!(rest, "postgres://u@db:5432/s?application_name=x");
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root, Some(PathBuf::from("/etc/ca.pem")));
        let (rest, mode, root) = take_tls_words("postgres://u@db/s?sslrootcert=/ca.pem");
        assert_eq!(
            (rest.as_str(), mode, root),
            ("postgres://u@db/s", None, Some(PathBuf::from("/ca.pem")))
        );
        let (rest, mode, root) =
            take_tls_words("host=db user=u sslmode=require sslrootcert=/ca.pem");
        assert_eq!(rest, "host=db user=u");
        assert_eq!(mode.as_deref(), Some("require"));
        assert_eq!(root, Some(PathBuf::from("/ca.pem")));
        assert_eq!(
            with_mode("postgres://db/s", "require"),
            "postgres://db/s?sslmode=require"
        );
        assert_eq!(
            with_mode("postgres://db/s?a=b", "disable"),
            "postgres://db/s?a=b&sslmode=disable"
        );
        assert_eq!(with_mode("host=db", "prefer"), "host=db sslmode=prefer");
    }

    #[test]
    fn verification_without_a_ca_and_unknown_modes_are_refused_by_name() {
        let err = |url: &str| split(url, url).err().unwrap().to_string();
        let e = err("postgres://db/s?sslmode=verify-full");
        assert!(e.contains("sslrootcert=FILE"), "{e}");
        let e = err("postgres://db/s?sslmode=allow");
        assert!(e.contains("sslmode=allow"), "{e}");
        let e = err("postgres://db/s?sslmode=require&sslrootcert=/nonexistent/ca.pem");
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let (rest, connector) = split("postgres://db/s?sslmode=disable", "").unwrap();
        assert_eq!(rest, "postgres://db/s?sslmode=disable");
        assert!(matches!(connector, Connector::Plain));
        let (rest, connector) = split("postgres://db/s", "").unwrap();
        assert_eq!(rest, "postgres://db/s?sslmode=prefer");
        assert!(matches!(connector, Connector::Tls(_)));
    }
}
