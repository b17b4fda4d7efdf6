//! What `/healthz` and `/metrics` say about the server: whether the
//! database answers, and whether the disk that holds the snapshots and
//! clips (and the embedded database) has room.
//!
//! Down (503) when the database does not answer or the disk has less than
//! [`DOWN_BELOW_BYTES`] free (an ingest would be refused with 507);
//! degraded (200, said why) below [`DEGRADED_BELOW_BYTES`] or 5 % of the
//! disk, whichever is smaller; ok otherwise.

use std::path::Path;

use crate::store::Store;

/// Free bytes under which the server counts as down: one largest batch.
pub const DOWN_BELOW_BYTES: u64 = 16 * 1024 * 1024;
/// Free bytes under which the server counts as degraded.
pub const DEGRADED_BELOW_BYTES: u64 = 1024 * 1024 * 1024;

/// The server's health.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Health {
    /// Why the server cannot do its job; empty when it can.
    pub down: Vec<String>,
    /// What needs a look.
    pub degraded: Vec<String>,
    /// Free bytes on the data disk, when it could be asked.
    pub disk_free_bytes: Option<u64>,
}

impl Health {
    /// 0 ok, 1 degraded, 2 down: the `safecity_health` gauge.
    pub fn level(&self) -> u8 {
        if !self.down.is_empty() {
            2
        } else if !self.degraded.is_empty() {
            1
        } else {
            0
        }
    }
}

/// Checks the database behind `store` and the disk that holds `data`.
/// Blocks (a database round trip).
pub fn check(store: &dyn Store, data: &Path) -> Health {
    let mut health = Health::default();
    if let Err(e) = store.ping() {
        health
            .down
            .push(format!("the database does not answer: {e}"));
    }
    match rustix::fs::statvfs(data) {
        Ok(fs) => {
            let free = fs.f_bavail.saturating_mul(fs.f_frsize);
            let total = fs.f_blocks.saturating_mul(fs.f_frsize);
            health.disk_free_bytes = Some(free);
            let mib = |b: u64| b / (1024 * 1024);
            if free < DOWN_BELOW_BYTES {
                health.down.push(format!(
                    "the disk of {} is full ({} MiB free): events are refused with 507",
                    data.display(),
                    mib(free)
                ));
            } else if free < DEGRADED_BELOW_BYTES.min(total / 20) {
                health.degraded.push(format!(
                    "the disk of {} is nearly full: {} MiB free of {} MiB",
                    data.display(),
                    mib(free),
                    mib(total)
                ));
            }
        }
        Err(e) => health.degraded.push(format!(
            "cannot ask the disk of {} for free space: {e}",
            data.display()
        )),
    }
    health
}
