//! Copying the write-ahead log back into the database beside ingest.
//!
//! SQLite's automatic checkpoint runs in the connection that commits, so
//! each time the log reached its checkpoint size one ingest call waited
//! while the log was copied into the database file and both were synced
//! (about 0.2 s each, a tenth of all ingest time, measured with
//! `server-bench` over 3 M events; with this thread one client ingests
//! 10 M events at 115k events/s instead of 97k). A [`Checkpointer`] thread, on a connection of its own,
//! runs passive checkpoints a short while after commits: they copy what
//! the log holds so far without taking the write lock. The writer's
//! automatic checkpoint still runs when the log reaches its size, but then
//! finds little left to copy; only a checkpoint that has copied every frame
//! lets the next transaction start the log from its beginning again, so
//! the log stays bounded as before. Durability does not depend on any of
//! this: a commit is synced into the log before it returns.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use safecity_core::sync::Locked;

/// Least time between two background checkpoints: a page that batches
/// dirty again and again is copied at most this often.
const INTERVAL: Duration = Duration::from_millis(200);

#[derive(Default)]
struct State {
    /// Commits since the last checkpoint began.
    dirty: bool,
    stop: bool,
}

/// The background checkpoint thread of one database; stopped and joined
/// when dropped.
pub(super) struct Checkpointer {
    shared: Arc<(Mutex<State>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread on `conn`, a connection of its own to the
    /// database named `name` in log lines.
    pub(super) fn start(conn: Connection, name: String) -> std::io::Result<Checkpointer> {
        let shared: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("sqlite-checkpoint".into())
                .spawn(move || run(&conn, &name, &shared))?
        };
        Ok(Checkpointer {
            shared,
            thread: Some(thread),
        })
    }

    /// Tells the thread that a transaction committed.
    pub(super) fn nudge(&self) {
        let (state, wake) = &*self.shared;
        state.locked().dirty = true;
        wake.notify_one();
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (state, wake) = &*self.shared;
        state.locked().stop = true;
        wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(conn: &Connection, name: &str, shared: &(Mutex<State>, Condvar)) {
    let (state, wake) = shared;
    let mut st = state.locked();
    loop {
        while !st.dirty && !st.stop {
            st = wake.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        if st.stop {
            return;
        }
        st.dirty = false;
        drop(st);
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!("{name}: background checkpoint failed, left to the writer: {e}");
        }
        st = state.locked();
        // Wait out the interval unless told to stop.
        let (guard, _) = wake
            .wait_timeout_while(st, INTERVAL, |s| !s.stop)
            .unwrap_or_else(|e| e.into_inner());
        st = guard;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_are_copied_back_without_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
                 CREATE TABLE t (x BLOB);",
            )
            .unwrap();
        let db_bytes = || std::fs::metadata(&path).unwrap().len();
        let ckpt = Checkpointer::start(Connection::open(&path).unwrap(), "db".into()).unwrap();
        let before = db_bytes();
        for _ in 0..20 {
            writer
                .execute("INSERT INTO t VALUES (zeroblob(8000))", [])
                .unwrap();
            ckpt.nudge();
        }
        // The rows reach the database file itself (until a checkpoint they
        // are only in the log), though the writer never checkpoints.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while db_bytes() < before + 20 * 8000 {
            assert!(
                std::time::Instant::now() < deadline,
                "not copied back: {} bytes",
                db_bytes()
            );
            std::thread::sleep(INTERVAL / 4);
        }
        drop(ckpt);
        let rows: i64 = writer
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 20);
    }
}
