//! A PostgreSQL server for the tests, started once per test binary.
//!
//! It runs from the installed Debian binaries (`/usr/lib/postgresql/*/bin`,
//! or the folder in `SAFECITY_PG_BIN`): `initdb` into a temporary
//! directory, then `postgres` on a free loopback port with trust
//! authentication, and TLS with a certificate from `scripts/tls-certs.sh`
//! (its CA at [`ca`]). PostgreSQL refuses to run as root, so as root it runs as
//! the `postgres` user (which the Debian package makes) or `nobody`,
//! through `runuser`. Each test gets a database of its own.
//!
//! The server is stopped, and its directory removed, when the test process
//! exits, however it exits: a small shell wrapper waits for its standard
//! input, a pipe from this process, to close.
//!
//! Where PostgreSQL is not installed the PostgreSQL tests say so on
//! standard error and return; under CI (`CI` set) that is a failure
//! instead, since `make test` installs it.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The wrapper: initdb, start, print the directory, wait for stdin to
/// close, stop, clean up.
const WRAPPER: &str = r#"
bin=$1; port=$2; certs=$3
dir=$(mktemp -d /tmp/safecity-pg.XXXXXX) || exit 1
trap 'rm -rf "$dir"' EXIT
if ! "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C --no-sync \
    >"$dir/initdb.log" 2>&1; then
  cat "$dir/initdb.log" >&2
  exit 1
fi
if ! bash "$certs" "$dir/tls" 127.0.0.1 localhost >"$dir/tls.log" 2>&1; then
  cat "$dir/tls.log" >&2
  exit 1
fi
chmod 0755 "$dir" "$dir/tls"
"$bin/postgres" -D "$dir/data" -p "$port" -k "$dir" -c listen_addresses=127.0.0.1 \
    -c max_connections=300 -c ssl=on -c ssl_cert_file="$dir/tls/server.pem" \
    -c ssl_key_file="$dir/tls/server.key" >"$dir/server.log" 2>&1 &
pid=$!
echo "$dir"
cat >/dev/null
kill -INT "$pid" 2>/dev/null
wait "$pid"
"#;

struct Cluster {
    port: u16,
    /// The CA that signed the server's certificate.
    ca: PathBuf,
    /// The wrapper; its stdin is the pipe whose closing stops the server.
    _wrapper: Mutex<Child>,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
static DATABASES: AtomicU32 = AtomicU32::new(0);

/// The newest installed PostgreSQL's `bin` folder.
fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SAFECITY_PG_BIN") {
        let dir = PathBuf::from(dir);
        return dir.join("initdb").is_file().then_some(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file())
                .then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn admin_url(port: u16, db: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/{db}")
}

fn start(bin: &Path) -> Result<Cluster, String> {
    let root = output("id", &["-u"]).as_deref() == Some("0");
    let user = if output("id", &["-u", "postgres"]).is_some() {
        "postgres"
    } else {
        "nobody"
    };
    let mut last_error = String::new();
    for _ in 0..3 {
        let port = free_port();
        let mut cmd = if root {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--", "sh", "-c", WRAPPER, "sh"]);
            c
        } else {
            let mut c = Command::new("sh");
            c.args(["-c", WRAPPER, "sh"]);
            c
        };
        let certs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/tls-certs.sh");
        let mut child = cmd
            .arg(bin)
            .arg(port.to_string())
            .arg(certs)
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut dir = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut dir)
            .map_err(|e| e.to_string())?;
        let dir = dir.trim().to_owned();
        if dir.is_empty() {
            let _ = child.wait();
            return Err(format!(
                "initdb failed (as {})",
                if root { user } else { "this user" }
            ));
        }
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            match postgres::Client::connect(&admin_url(port, "postgres"), postgres::NoTls) {
                Ok(_) => {
                    let mut line = std::io::stderr().lock();
                    let _ = writeln!(
                        line,
                        "test PostgreSQL server from {} on 127.0.0.1:{port}, data in {dir}",
                        bin.display()
                    );
                    return Ok(Cluster {
                        port,
                        ca: Path::new(&dir).join("tls/ca.pem"),
                        _wrapper: Mutex::new(child),
                    });
                }
                Err(e) => last_error = e.to_string(),
            }
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(Path::new(&dir).join("server.log")).unwrap_or_default();
        last_error = format!("{last_error}\n{log}");
        drop(child.stdin.take());
        let _ = child.wait();
    }
    Err(format!("PostgreSQL did not start: {last_error}"))
}

/// The CA that signed the test server's certificate (after [`database`]
/// gave a URL).
pub fn ca() -> PathBuf {
    match CLUSTER.get() {
        Some(Ok(cluster)) => cluster.ca.clone(),
        _ => panic!("no test PostgreSQL server is running"),
    }
}

/// The URL of a new, empty database on the shared test server, or `None`
/// (after saying why on standard error) when PostgreSQL is not installed.
/// Blocks; fine to call from async tests (it runs on a thread of its own).
pub fn database() -> Option<String> {
    std::thread::spawn(database_blocking).join().unwrap()
}

fn database_blocking() -> Option<String> {
    let Some(bin) = bin_dir() else {
        let msg = "PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin \
                   or $SAFECITY_PG_BIN): skipping this PostgreSQL test; \
                   run scripts/setup-postgres.sh";
        assert!(
            std::env::var_os("CI").is_none(),
            "{msg} (CI is set: this is a failure there)"
        );
        let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {msg}");
        return None;
    };
    let cluster = match CLUSTER.get_or_init(|| start(&bin)) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let name = format!(
        "t{}_{}",
        std::process::id(),
        DATABASES.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin =
        postgres::Client::connect(&admin_url(cluster.port, "postgres"), postgres::NoTls).unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    Some(admin_url(cluster.port, &name))
}
