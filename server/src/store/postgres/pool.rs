//! The connection pool: connections checked after being idle, prepared
//! statements cached per connection, a lease returned on drop.

use super::*;

/// Most connections open at once; more callers wait for one.
pub(super) const MAX_CONNECTIONS: usize = 16;

/// Prepared statements kept per connection.
pub(super) const MAX_STATEMENTS: usize = 256;

/// One pooled connection and its prepared statements.
pub(super) struct Conn {
    pub(super) client: Client,
    pub(super) stmts: HashMap<String, Statement>,
    /// When it last went back to the pool.
    pub(super) returned_at: Instant,
}

/// An idle connection older than this is checked with an empty query
/// before it is lent: the database may have restarted meanwhile.
pub(super) const CHECK_AFTER_IDLE: Duration = Duration::from_secs(2);

/// How long that check may take.
pub(super) const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether `e` means the connection itself is gone (closed or reset, or
/// ended by the server: SQLSTATE classes 08 and 57P, as in a restart), so
/// that it must not be lent again.
pub(super) fn connection_lost(e: &Error) -> bool {
    let Error::Postgres(p) = e else {
        return matches!(e, Error::Connect { .. });
    };
    let class = p.as_db_error().map(|d| d.code().code());
    p.is_closed()
        || class.is_some_and(|c| c.starts_with("08") || c.starts_with("57P"))
        || std::error::Error::source(p).is_some_and(|s| s.is::<std::io::Error>())
}

/// Prepares `sql` on `client` once per connection.
pub(super) fn stmt(
    stmts: &mut HashMap<String, Statement>,
    client: &mut impl GenericClient,
    sql: &str,
) -> Result<Statement> {
    if let Some(s) = stmts.get(sql) {
        return Ok(s.clone());
    }
    let s = client.prepare(sql)?;
    if stmts.len() >= MAX_STATEMENTS {
        stmts.clear();
    }
    stmts.insert(sql.to_owned(), s.clone());
    Ok(s)
}

pub(super) struct PoolState {
    pub(super) idle: Vec<Conn>,
    /// Connections open, idle or lent.
    pub(super) open: usize,
}

/// A small blocking connection pool.
pub(super) struct Pool {
    pub(super) config: postgres::Config,
    /// TLS or not, as the URL's `sslmode` says (`pg_tls`).
    pub(super) connector: Connector,
    /// The URL without its password.
    pub(super) url: String,
    pub(super) state: Mutex<PoolState>,
    pub(super) returned: Condvar,
}

/// A connection lent by the pool; it goes back when dropped.
pub(super) struct Lease<'a> {
    pub(super) pool: &'a Pool,
    pub(super) conn: Option<Conn>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let mut state = self.pool.state.locked();
        if conn.client.is_closed() {
            state.open -= 1;
            drop(state);
            drop(conn);
        } else {
            state.idle.push(Conn {
                returned_at: Instant::now(),
                ..conn
            });
            drop(state);
        }
        self.pool.returned.notify_one();
    }
}

impl Lease<'_> {
    /// Closes the lent connection instead of giving it back.
    pub(super) fn discard(&mut self) {
        if self.conn.take().is_some() {
            self.pool.state.locked().open -= 1;
            self.pool.returned.notify_one();
        }
    }
}

impl Pool {
    pub(super) fn connect(&self) -> Result<Conn> {
        let connected = match &self.connector {
            Connector::Plain => self.config.connect(NoTls),
            Connector::Tls(tls) => self.config.connect(tls.clone()),
        };
        let mut client = connected.map_err(|cause| Error::Connect {
            url: self.url.clone(),
            cause,
        })?;
        let sync: String = client
            .query_one("SELECT current_setting('synchronous_commit')", &[])?
            .get(0);
        if sync == "off" {
            client.batch_execute("SET synchronous_commit = on")?;
        }
        Ok(Conn {
            client,
            stmts: HashMap::new(),
            returned_at: Instant::now(),
        })
    }

    pub(super) fn lease(&self) -> Result<Lease<'_>> {
        let mut state = self.state.locked();
        loop {
            if let Some(mut conn) = state.idle.pop() {
                if conn.client.is_closed() {
                    state.open -= 1;
                    continue;
                }
                if conn.returned_at.elapsed() < CHECK_AFTER_IDLE {
                    return Ok(Lease {
                        pool: self,
                        conn: Some(conn),
                    });
                }
                drop(state);
                if conn.client.is_valid(CHECK_TIMEOUT).is_ok() {
                    return Ok(Lease {
                        pool: self,
                        conn: Some(conn),
                    });
                }
                tracing::warn!(url = %self.url, "a pooled PostgreSQL connection was lost; opening another");
                drop(conn);
                state = self.state.locked();
                state.open -= 1;
                continue;
            }
            if state.open < MAX_CONNECTIONS {
                state.open += 1;
                drop(state);
                return match self.connect() {
                    Ok(conn) => Ok(Lease {
                        pool: self,
                        conn: Some(conn),
                    }),
                    Err(e) => {
                        self.state.locked().open -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            state = self.returned.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Runs `f` on a pooled connection. A connection that fails as lost
    /// is closed, not lent again, so the next call opens a new one.
    pub(super) fn with<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        let mut lease = self.lease()?;
        let out = f(lease.conn.as_mut().expect("a lease holds a connection"));
        if let Err(e) = &out {
            if connection_lost(e) {
                tracing::warn!(url = %self.url, "PostgreSQL connection lost: {e}");
                lease.discard();
            }
        }
        out
    }
}
