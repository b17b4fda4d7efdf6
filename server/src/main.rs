//! `safecity-server`: the search server's command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use safecity_server::{Role, ServerConfig};

/// The safecity search server.
///
/// With no configuration file it stores everything in an embedded database
/// under --data-dir (default ./safecity-data); with --postgres URL (or
/// SAFECITY_POSTGRES_URL, or [store] in the configuration) events live in
/// PostgreSQL. SAFECITY_ADMIN_TOKEN, when set, is accepted as an admin token.
#[derive(Debug, Parser)]
#[command(name = "safecity-server", version, about)]
struct Args {
    /// TOML configuration file (see safecity-server.example.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Data directory [default: safecity-data].
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Keep events in PostgreSQL at this URL instead of the embedded
    /// store (postgres://USER@HOST:PORT/DB); blobs stay in --data-dir. A
    /// URL with a password is refused here, where every user sees it in
    /// the process list: give that one in SAFECITY_POSTGRES_URL or
    /// [store] url, or the password in PGPASSWORD.
    #[arg(long, global = true, value_name = "URL")]
    postgres: Option<String>,
    /// Address to serve on [default: 127.0.0.1:8080].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key (with --tls-cert).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP on an address other than loopback, for a proxy in
    /// front that terminates TLS.
    #[arg(long)]
    plain_http: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage bearer tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Delete the events the [retention] settings say have expired, with
    /// their alerts, unused plates and unused snapshots and clips, once
    /// (e.g. from cron); the audit log is kept.
    Purge,
}

#[derive(Debug, Subcommand)]
enum TokenAction {
    /// Make a token and print it once (only its hash is stored).
    Create {
        /// edge, operator, investigator or admin.
        #[arg(long)]
        role: Role,
        /// Who or what holds it; recorded in the audit log. An edge
        /// token's name is the edge_id of the one edge it may send events
        /// and clips for.
        #[arg(long)]
        name: String,
        /// The token stops working this many days from now [default:
        /// never].
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_days: Option<u32>,
    },
    /// List the tokens (name, role, made, expiry, revocation; never the
    /// tokens themselves, which are not stored).
    List,
    /// Revoke every token with this name. A running server stops taking
    /// them within 30 s; the revocation goes to the audit log.
    Revoke {
        #[arg(long)]
        name: String,
    },
}

fn main() -> std::process::ExitCode {
    match serve_or_run_command() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line, with every cause, and no backtrace: it is for people.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn serve_or_run_command() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let mut config = match &args.config {
        Some(path) => ServerConfig::load(path)?,
        None => ServerConfig::default(),
    };
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(url) = &args.postgres {
        if url
            .parse::<postgres::Config>()
            .is_ok_and(|c| c.get_password().is_some())
        {
            anyhow::bail!(
                "--postgres: the URL holds a password, which every user of this machine can \
                 read in the process list; set SAFECITY_POSTGRES_URL or [store] url in the \
                 configuration file instead, or leave the password out of the URL and set \
                 PGPASSWORD"
            );
        }
    }
    let postgres = args.postgres.or_else(|| {
        std::env::var("SAFECITY_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
    });
    if let Some(url) = postgres {
        config.store = safecity_server::StoreConfig::postgres(url);
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        config.tls = Some(safecity_server::TlsConfig { cert, key });
    }
    config.plain_http |= args.plain_http;
    match args.command {
        Some(Command::Token { action }) => {
            config.validate()?;
            let location = config.store_location();
            // Store calls block (PostgreSQL's client on a runtime of its own).
            let out = tokio::task::spawn_blocking(move || token_command(&config, action))
                .await?
                .with_context(|| format!("cannot manage tokens in {location}"))?;
            print!("{out}");
            Ok(())
        }
        Some(Command::Purge) => {
            if config.retention.policy().keeps_everything() {
                println!(
                    "nothing to purge: no retention is set in [retention], so every event is kept"
                );
                return Ok(());
            }
            let location = config.store_location();
            // Store calls block (PostgreSQL's client on a runtime of its own).
            let report =
                tokio::task::spawn_blocking(move || safecity_server::purge_data_dir(&config))
                    .await?
                    .with_context(|| format!("cannot purge {location}"))?;
            println!("purged {report}");
            Ok(())
        }
        None => {
            config.admin_token = std::env::var("SAFECITY_ADMIN_TOKEN")
                .ok()
                .filter(|t| !t.is_empty());
            config.validate()?;
            safecity_server::run(config, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
        }
    }
}

/// Runs a `token` subcommand; returns what to print.
fn token_command(config: &ServerConfig, action: TokenAction) -> safecity_server::Result<String> {
    match action {
        TokenAction::Create {
            role,
            name,
            expires_days,
        } => {
            let token = safecity_server::create_token(config, role, &name, expires_days)?;
            Ok(format!("{token}\n"))
        }
        TokenAction::List => {
            let mut out = format!(
                "{:<12}  {:<12}  {:<24}  {:<20}  {:<20}  {}\n",
                "id", "role", "name", "made", "expires", "revoked"
            );
            for t in safecity_server::list_tokens(config)? {
                let when = |ms: Option<i64>| ms.map_or_else(|| "-".to_owned(), utc);
                out.push_str(&format!(
                    "{:<12}  {:<12}  {:<24}  {:<20}  {:<20}  {}\n",
                    t.id,
                    t.role.as_str(),
                    t.name,
                    utc(t.created_ms),
                    when(t.expires_ms),
                    when(t.revoked_ms)
                ));
            }
            Ok(out)
        }
        TokenAction::Revoke { name } => {
            let n = safecity_server::revoke_tokens(config, &name)?;
            if n == 0 {
                return Err(safecity_server::Error::Config(format!(
                    "no token named {name:?} to revoke (see `safecity-server token list`)"
                )));
            }
            Ok(format!("revoked {n} token(s) named {name:?}\n"))
        }
    }
}

/// `ms` since 1970 as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc(ms: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| ms.to_string())
}
