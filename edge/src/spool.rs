//! The durable on-disk event spool between event production and the
//! forwarder.
//!
//! An event counts as produced once [`Spool::append`] (or
//! [`Spool::append_many`]) has returned `Ok`: by then its record is on disk
//! and synced. The forwarder takes the oldest records with [`Spool::peek`]
//! and removes the delivered ones with [`Spool::ack`]. Delivery is at least
//! once: a record whose ack was not yet durable when the edge stopped is sent
//! again after the restart (the server stores each event id once).
//!
//! # Records and order
//!
//! Each record has a [`Priority`] class, an opaque payload (the event's
//! JSON) and a stable `u64` id from one sequence, assigned at append and
//! stored with the record. [`Spool::peek`] returns every pending
//! [`Priority::Alarm`] record before any [`Priority::Normal`] one, each class
//! in id (append) order.
//!
//! # Files
//!
//! The spool directory holds, per class, segment files
//! `alarm-<first id>.seg` and `normal-<first id>.seg` (first id in 20
//! digits), each with an optional ack file (`.ack`), plus `spool.seq`.
//! Other files in the directory are left alone. An open spool holds an
//! exclusive lock on `spool.lock` (`flock`, released when the process ends,
//! however it ends), so a second edge pointed at the same directory is
//! refused ([`SpoolError::Locked`]) instead of interleaving segments.
//!
//! - A segment is a run of record frames: a 24-byte header (magic `SCR1`,
//!   CRC-32 of the rest of the header and the payload, payload length `u32`,
//!   priority byte, 3 zero bytes, id `u64`, all little-endian) followed by the
//!   payload. Appends go to the newest segment of the class until the next
//!   record would take it past `segment_bytes`; then a new segment starts,
//!   named after that record's id. A record that cannot fit in an empty
//!   segment is refused ([`SpoolError::TooLarge`]).
//! - An ack file lists acknowledged ids of its segment in 16-byte entries
//!   (magic `SCA1`, id, CRC-32). A segment whose records are all acknowledged
//!   is deleted with its ack file, so the spool is empty on disk once
//!   everything is delivered.
//! - `spool.seq` keeps the next id (magic `SCQ1`, id, CRC-32). It is written
//!   (temporary file, sync, rename, directory sync) before segments are
//!   deleted, so that ids keep increasing across restarts even when every
//!   segment has gone.
//!
//! # Durability (fsync policy)
//!
//! Every `append` and `append_many` call writes its records and syncs the
//! segment files it wrote (`fdatasync`) before returning; a new segment file
//! also syncs the directory. `append_many` shares one sync among its records,
//! so batching amortises the cost; alarms, appended by their own call, are on
//! disk as soon as the call returns. Every `ack` call syncs the ack files it
//! wrote, or deletes finished segments and syncs the directory, before it
//! returns. Nothing is left unsynced between calls, so dropping a [`Spool`]
//! without any shutdown step loses nothing that was confirmed.
//!
//! # Recovery
//!
//! [`Spool::open`] scans every segment and checks every frame:
//!
//! - A damaged tail (a record cut short by a crash in the middle of an
//!   append, or garbage after the last valid record) is truncated away,
//!   logged and counted in [`SpoolStats::torn_tails_cut`].
//! - A damaged frame with valid frames after it (a flipped bit on disk) is
//!   skipped by searching forward for the next valid frame (magic, checksum,
//!   increasing id); the skipped range is logged and counted in
//!   [`SpoolStats::corrupt_skipped`] and the records after it are kept.
//! - A partial ack entry at the end of an ack file (a crash mid-ack) is cut
//!   and counted as a torn tail; those records are simply sent again. A
//!   damaged ack entry in the middle is skipped and counted as corrupt.
//! - Segments with nothing pending, ack files without a segment and leftover
//!   temporary files are deleted. A missing segment file only loses its own
//!   records.
//!
//! A record that cannot be read back later (its file vanished or its bytes
//! no longer match the checksum) is skipped by `peek`, logged, and counted in
//! [`SpoolStats::lost`].
//!
//! # Size cap
//!
//! The spool's files are bounded by `max_bytes` (segments and ack files
//! together). When an append would go past it, whole segments of normal
//! records are dropped, oldest first, until the record fits; the pending
//! records in them are counted in [`SpoolStats::dropped`] and logged. Alarms
//! are never dropped: an alarm append also drops normal segments to make
//! room, and when only alarms remain it is written over the cap. A normal
//! append that would not fit even with every normal record dropped (unsent
//! alarms fill the cap) is refused with [`SpoolError::Full`] and drops
//! nothing. Dropping works in whole segments, so keep `max_bytes` well above
//! `segment_bytes`.
//!
//! A full disk below the cap is met the same way: when a write fails for
//! want of space, the call's records are taken back, the oldest normal
//! segment is dropped (counted and logged as at the cap) and the call is
//! tried again, until it fits or no normal record is left to drop. For an
//! alarm the spool then gives up its reserve: the file `reserve`
//! ([`RESERVE_BYTES`] of zeros, made at open and again after a delivery
//! frees space, where the disk has room) is deleted and the write tried
//! once more, so alarms are still stored on a disk that other files filled.
//! Only then is the error returned.
//!
//! [`Spool`] is not synchronised; share it behind a `Mutex`. One process at
//! a time may use a spool directory.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use format::HEADER_LEN;

mod format;
#[cfg(test)]
mod tests;

/// Segment size used by the edge daemon.
pub const DEFAULT_SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

/// The smallest segment size accepted.
const MIN_SEGMENT_BYTES: u64 = 64;

const SEQ_FILE: &str = "spool.seq";
const SEQ_TMP: &str = "spool.seq.tmp";
const PROBE_FILE: &str = ".spool-probe";
const LOCK_FILE: &str = "spool.lock";

/// Space the spool holds back for alarms on a full disk (see the module
/// docs): room for hundreds of alarm events, whose snapshots take a few kB.
pub const RESERVE_BYTES: u64 = 4 * 1024 * 1024;
const RESERVE_FILE: &str = "reserve";
const RESERVE_TMP: &str = "reserve.tmp";

/// Where the spool lives and how big it may grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// Directory of the spool files; created when missing.
    pub dir: PathBuf,
    /// Cap on the bytes of the spool's files (see the module docs).
    pub max_bytes: u64,
    /// Size at which a segment file is closed and a new one started
    /// ([`DEFAULT_SEGMENT_BYTES`] for the daemon).
    pub segment_bytes: u64,
}

/// A record's class: alarms are delivered first and never dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Panic-pillar alarms and other events a duty officer must see.
    Alarm,
    /// Plate reads, vehicles and status events.
    Normal,
}

impl Priority {
    const ALL: [Priority; 2] = [Priority::Alarm, Priority::Normal];

    fn index(self) -> usize {
        self as usize
    }

    fn name(self) -> &'static str {
        match self {
            Priority::Alarm => "alarm",
            Priority::Normal => "normal",
        }
    }
}

/// One spooled event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Assigned at append; unique and increasing for the spool's lifetime.
    pub id: u64,
    pub priority: Priority,
    pub payload: Vec<u8>,
}

/// Counters and sizes; the event counters count since [`Spool::open`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Pending (unacknowledged) alarm records and their payload bytes.
    pub alarm_records: u64,
    pub alarm_bytes: u64,
    /// Pending normal records and their payload bytes.
    pub normal_records: u64,
    pub normal_bytes: u64,
    /// Normal records dropped by the size cap.
    pub dropped: u64,
    /// Damaged file tails cut at open (crashes mid-append or mid-ack).
    pub torn_tails_cut: u64,
    /// Damaged ranges skipped in the middle of segment or ack files at open.
    pub corrupt_skipped: u64,
    /// Records that could not be read back (file gone or damaged).
    pub lost: u64,
    /// Bytes of segment and ack files.
    pub disk_bytes: u64,
    /// Segment files.
    pub segments: u64,
}

impl SpoolStats {
    /// Pending records of both classes.
    pub fn pending_records(&self) -> u64 {
        self.alarm_records + self.normal_records
    }

    /// Payload bytes of the pending records of both classes.
    pub fn pending_bytes(&self) -> u64 {
        self.alarm_bytes + self.normal_bytes
    }
}

/// What went wrong, with the file concerned and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The spool directory cannot be created, listed or written.
    #[error(
        "spool directory {} is not usable (cannot {what}): {source}; check the \
         [spool] dir setting and the directory's permissions",
        path.display()
    )]
    Dir {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
    /// Reading, writing, syncing or deleting a spool file failed.
    #[error(
        "spool file {}: cannot {what}: {source}; check free disk space and the \
         permissions of the spool directory",
        path.display()
    )]
    Io {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
    /// A record that cannot fit in a segment.
    #[error(
        "an event of {size} bytes (with its {HEADER_LEN}-byte header) does not fit \
         in a spool segment of {segment_bytes} bytes in {}; the event was not \
         stored; make events smaller or segments larger",
        path.display()
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        segment_bytes: u64,
    },
    /// A normal record that does not fit under the cap beside the pending
    /// alarms.
    #[error(
        "spool {} is full: unsent alarms take {alarm_bytes} of its {max_bytes} \
         bytes, leaving no room for a normal event of {size} bytes, which was \
         not stored; restore the connection to the server or raise [spool] max_mb",
        path.display()
    )]
    Full {
        path: PathBuf,
        size: u64,
        alarm_bytes: u64,
        max_bytes: u64,
    },
    /// The configuration cannot work.
    #[error("spool {}: invalid configuration: {why}", path.display())]
    Config { path: PathBuf, why: String },
    /// Another spool (another edge process, or this one) has the directory.
    #[error(
        "spool directory {} is in use: {} is locked by another safecity-edge; \
         give each edge its own [spool] dir, or stop the other one",
        path.display(),
        path.join(LOCK_FILE).display()
    )]
    Locked { path: PathBuf },
}

impl SpoolError {
    /// A write that failed for want of disk space.
    pub fn is_disk_full(&self) -> bool {
        match self {
            SpoolError::Io { source, .. } | SpoolError::Dir { source, .. } => {
                source.kind() == io::ErrorKind::StorageFull
            }
            _ => false,
        }
    }
}

fn io_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> SpoolError + 'a {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        what,
        source,
    }
}

fn dir_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> SpoolError + 'a {
    move |source| SpoolError::Dir {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// Where a pending record lies in its segment.
#[derive(Debug, Clone, Copy)]
struct Entry {
    offset: u64,
    len: u32,
}

/// One segment file and what of it is still pending.
#[derive(Debug, Default)]
struct Segment {
    /// Bytes of the segment file.
    len: u64,
    /// Bytes of its ack file (0 when there is none).
    ack_len: u64,
    pending: BTreeMap<u64, Entry>,
    pending_bytes: u64,
    /// Open for appending while this is its class's newest segment.
    writer: Option<File>,
}

impl Segment {
    fn insert(&mut self, id: u64, entry: Entry) {
        self.pending_bytes += u64::from(entry.len);
        self.pending.insert(id, entry);
    }

    fn remove(&mut self, id: u64) {
        if let Some(e) = self.pending.remove(&id) {
            self.pending_bytes -= u64::from(e.len);
        }
    }
}

/// The durable event spool; see the module docs.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    /// Per [`Priority::index`]: segments by first id.
    segments: [BTreeMap<u64, Segment>; 2],
    next_id: u64,
    /// The next id `spool.seq` holds on disk.
    seq_on_disk: u64,
    dropped: u64,
    torn_tails_cut: u64,
    corrupt_skipped: u64,
    lost: u64,
    /// Records `peek` could not read; removed by the next `&mut` call.
    unreadable: RefCell<BTreeSet<u64>>,
    /// The reserve file is not (known to be) there.
    reserve_missing: bool,
    /// `spool.lock`, locked for as long as the spool is open.
    _lock: File,
}

fn segment_path(dir: &Path, class: Priority, first: u64) -> PathBuf {
    dir.join(format!("{}-{first:020}.seg", class.name()))
}

fn ack_path(dir: &Path, class: Priority, first: u64) -> PathBuf {
    dir.join(format!("{}-{first:020}.ack", class.name()))
}

/// The class, first id and kind (`true`: segment, `false`: ack file) a
/// spool file name encodes.
fn parse_name(name: &str) -> Option<(Priority, u64, bool)> {
    let (stem, is_segment) = if let Some(s) = name.strip_suffix(".seg") {
        (s, true)
    } else {
        (name.strip_suffix(".ack")?, false)
    };
    let (class, digits) = stem.split_once('-')?;
    let class = Priority::ALL.into_iter().find(|p| p.name() == class)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((class, digits.parse().ok()?, is_segment))
}

fn record_size(payload_len: usize) -> u64 {
    HEADER_LEN as u64 + payload_len as u64
}

fn remove_if_present(path: &Path) -> Result<(), SpoolError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(path, "delete")(e)),
        _ => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(dir_err(dir, "sync"))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn truncate(path: &Path, len: u64) -> Result<(), SpoolError> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| {
            f.set_len(len)?;
            f.sync_all()
        })
        .map_err(io_err(path, "truncate"))
}

impl Spool {
    /// Opens (creating when missing) the spool in `config.dir` and repairs
    /// what a crash left (see the module docs).
    pub fn open(config: SpoolConfig) -> Result<Spool, SpoolError> {
        let SpoolConfig {
            dir,
            max_bytes,
            segment_bytes,
        } = config;
        let limit = record_size(u32::MAX as usize);
        if !(MIN_SEGMENT_BYTES..=limit).contains(&segment_bytes) {
            return Err(SpoolError::Config {
                path: dir,
                why: format!(
                    "segment_bytes {segment_bytes} is outside {MIN_SEGMENT_BYTES}..={limit}"
                ),
            });
        }
        if max_bytes == 0 {
            return Err(SpoolError::Config {
                path: dir,
                why: "max_bytes is 0".into(),
            });
        }
        fs::create_dir_all(&dir).map_err(dir_err(&dir, "create it"))?;
        // The events waiting here are nobody else's to read.
        fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(dir_err(&dir, "make it private (mode 0700)"))?;
        let probe = dir.join(PROBE_FILE);
        fs::write(&probe, b"")
            .and_then(|()| fs::remove_file(&probe))
            .map_err(dir_err(&dir, "write to it"))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path, "open"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(SpoolError::Locked { path: dir });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path, "lock")(e)),
        }

        let mut spool = Spool {
            dir,
            max_bytes,
            segment_bytes,
            segments: Default::default(),
            next_id: 1,
            seq_on_disk: 0,
            dropped: 0,
            torn_tails_cut: 0,
            corrupt_skipped: 0,
            lost: 0,
            unreadable: RefCell::default(),
            reserve_missing: true,
            _lock: lock,
        };
        let dir = spool.dir.clone();
        let mut segment_files = BTreeSet::new();
        let mut ack_files = BTreeSet::new();
        for entry in fs::read_dir(&dir).map_err(dir_err(&dir, "list it"))? {
            let entry = entry.map_err(dir_err(&dir, "list it"))?;
            let name = entry.file_name();
            match name.to_str().and_then(parse_name) {
                Some((class, first, true)) => segment_files.insert((class, first)),
                Some((class, first, false)) => ack_files.insert((class, first)),
                None => false,
            };
        }

        remove_if_present(&dir.join(SEQ_TMP))?;
        let seq_path = dir.join(SEQ_FILE);
        match fs::read(&seq_path) {
            Ok(data) => match format::parse_seq(&data) {
                Some(next) => {
                    spool.seq_on_disk = next;
                    spool.next_id = spool.next_id.max(next);
                }
                None => tracing::warn!(
                    "spool: {} is damaged; ids continue after the highest id on disk",
                    seq_path.display()
                ),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&seq_path, "read")(e)),
        }

        for &(class, first) in &segment_files {
            spool.load_segment(class, first, ack_files.contains(&(class, first)))?;
        }
        for &(class, first) in ack_files.difference(&segment_files) {
            remove_if_present(&ack_path(&dir, class, first))?;
        }
        let finished: Vec<(Priority, u64)> = Priority::ALL
            .into_iter()
            .flat_map(|class| {
                spool.segments[class.index()]
                    .iter()
                    .filter(|(_, s)| s.pending.is_empty())
                    .map(move |(first, _)| (class, *first))
            })
            .collect();
        spool.remove_segments(&finished)?;

        let s = spool.stats();
        tracing::info!(
            "spool {}: {} alarms and {} other events pending ({} bytes on disk)",
            dir.display(),
            s.alarm_records,
            s.normal_records,
            s.disk_bytes
        );
        spool.keep_reserve();
        Ok(spool)
    }

    /// Reads one segment and its ack file into the index, cutting damaged
    /// tails.
    fn load_segment(
        &mut self,
        class: Priority,
        first: u64,
        has_acks: bool,
    ) -> Result<(), SpoolError> {
        let path = segment_path(&self.dir, class, first);
        let data = fs::read(&path).map_err(io_err(&path, "read"))?;
        self.next_id = self.next_id.max(first.saturating_add(1));
        let scan = format::scan(&data, class, first);
        for range in &scan.corrupt {
            tracing::warn!(
                "spool: {}: skipped {} damaged bytes at offset {}; the records in them are lost",
                path.display(),
                range.end - range.start,
                range.start
            );
            self.corrupt_skipped += 1;
        }
        let mut segment = Segment {
            len: data.len() as u64,
            ..Segment::default()
        };
        if let Some(at) = scan.torn_at {
            tracing::warn!(
                "spool: {}: cut a damaged tail of {} bytes at offset {at} (an append \
                 interrupted by a crash)",
                path.display(),
                data.len() as u64 - at
            );
            truncate(&path, at)?;
            self.torn_tails_cut += 1;
            segment.len = at;
        }
        if let Some(last) = scan.frames.last() {
            self.next_id = self.next_id.max(last.id.saturating_add(1));
        }
        for f in &scan.frames {
            segment.insert(
                f.id,
                Entry {
                    offset: f.offset,
                    len: f.len,
                },
            );
        }
        drop(data);

        if has_acks {
            let path = ack_path(&self.dir, class, first);
            let data = fs::read(&path).map_err(io_err(&path, "read"))?;
            let scan = format::parse_acks(&data);
            if scan.corrupt > 0 {
                tracing::warn!(
                    "spool: {}: skipped {} damaged ranges; those events may be sent again",
                    path.display(),
                    scan.corrupt
                );
                self.corrupt_skipped += scan.corrupt as u64;
            }
            segment.ack_len = data.len() as u64;
            if let Some(at) = scan.torn_at {
                tracing::warn!(
                    "spool: {}: cut a damaged tail of {} bytes (an ack interrupted by a \
                     crash); those events are sent again",
                    path.display(),
                    data.len() - at
                );
                truncate(&path, at as u64)?;
                self.torn_tails_cut += 1;
                segment.ack_len = at as u64;
            }
            for id in scan.ids {
                segment.remove(id);
            }
        }
        self.segments[class.index()].insert(first, segment);
        Ok(())
    }

    /// Appends one record, synced before returning; returns its id.
    pub fn append(&mut self, priority: Priority, payload: &[u8]) -> Result<u64, SpoolError> {
        Ok(self.append_many(&[(priority, payload)])?[0])
    }

    /// Appends records in order with one sync at the end; returns their ids.
    ///
    /// Sizes are checked first, so a [`SpoolError::TooLarge`] or
    /// [`SpoolError::Full`] stores none of them; after an I/O error the
    /// records of this call are removed again as far as possible (any left
    /// behind are delivered, never half-read).
    pub fn append_many(&mut self, items: &[(Priority, &[u8])]) -> Result<Vec<u64>, SpoolError> {
        self.purge_unreadable();
        self.check_fits(items)?;
        loop {
            let start_id = self.next_id;
            let mut touched = Vec::new();
            let mut ids = Vec::with_capacity(items.len());
            match self.write_batch(items, &mut touched, &mut ids) {
                Ok(()) => return Ok(ids),
                Err(e) => {
                    self.roll_back(start_id, &touched);
                    if !e.is_disk_full() {
                        return Err(e);
                    }
                    // The disk is full: older plain reads make room, and
                    // for an alarm, when none is left, the reserve.
                    let alarm = items.iter().any(|(p, _)| *p == Priority::Alarm);
                    if !(self.drop_oldest_normal("its disk is full")?
                        || (alarm && self.release_reserve()))
                    {
                        return Err(e);
                    }
                }
            }
        }
    }

    fn check_fits(&self, items: &[(Priority, &[u8])]) -> Result<(), SpoolError> {
        let mut alarm_bytes = self.class_disk_bytes(Priority::Alarm);
        for &(priority, payload) in items {
            let size = record_size(payload.len());
            if size > self.segment_bytes {
                return Err(SpoolError::TooLarge {
                    path: self.dir.clone(),
                    size,
                    segment_bytes: self.segment_bytes,
                });
            }
            if priority == Priority::Alarm {
                alarm_bytes += size;
            }
        }
        for &(priority, payload) in items {
            let size = record_size(payload.len());
            if priority == Priority::Normal && alarm_bytes + size > self.max_bytes {
                return Err(SpoolError::Full {
                    path: self.dir.clone(),
                    size,
                    alarm_bytes,
                    max_bytes: self.max_bytes,
                });
            }
        }
        Ok(())
    }

    /// Writes and syncs records; `touched` gets each segment written with
    /// its length before, `ids` the ids given out.
    fn write_batch(
        &mut self,
        items: &[(Priority, &[u8])],
        touched: &mut Vec<(Priority, u64, u64)>,
        ids: &mut Vec<u64>,
    ) -> Result<(), SpoolError> {
        let mut created = false;
        let mut buf = Vec::new();
        for &(priority, payload) in items {
            let size = record_size(payload.len());
            self.make_room(size)?;
            let c = priority.index();
            if let Some(first) = self.active(priority) {
                if self.segments[c][&first].len + size > self.segment_bytes {
                    self.seal(priority, first)?;
                }
            }
            let id = self.next_id;
            let first = match self.active(priority) {
                Some(first) => first,
                None => {
                    let path = segment_path(&self.dir, priority, id);
                    let file = OpenOptions::new()
                        .create_new(true)
                        .append(true)
                        .open(&path)
                        .map_err(io_err(&path, "create"))?;
                    self.segments[c].insert(
                        id,
                        Segment {
                            writer: Some(file),
                            ..Segment::default()
                        },
                    );
                    created = true;
                    id
                }
            };
            let segment = self.segments[c].get_mut(&first).expect("active segment");
            if !touched.iter().any(|&(p, f, _)| p == priority && f == first) {
                touched.push((priority, first, segment.len));
            }
            buf.clear();
            format::encode_record(&mut buf, id, priority, payload);
            let writer = segment.writer.as_mut().expect("active segment");
            if let Err(e) = writer.write_all(&buf) {
                return Err(io_err(&segment_path(&self.dir, priority, first), "write")(
                    e,
                ));
            }
            segment.insert(
                id,
                Entry {
                    offset: segment.len,
                    len: payload.len() as u32,
                },
            );
            segment.len += size;
            self.next_id += 1;
            ids.push(id);
        }
        for class in Priority::ALL {
            if let Some(first) = self.active(class) {
                if touched.iter().any(|&(p, f, _)| p == class && f == first) {
                    let path = segment_path(&self.dir, class, first);
                    let segment = self.segments[class.index()]
                        .get_mut(&first)
                        .expect("active");
                    let writer = segment.writer.as_mut().expect("active segment");
                    writer.sync_data().map_err(io_err(&path, "sync"))?;
                }
            }
        }
        if created {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Takes back the records from `start_id` on after a failed write.
    fn roll_back(&mut self, start_id: u64, touched: &[(Priority, u64, u64)]) {
        for &(class, first, len_before) in touched {
            let path = segment_path(&self.dir, class, first);
            let Some(segment) = self.segments[class.index()].get_mut(&first) else {
                continue;
            };
            segment.writer = None;
            let ids: Vec<u64> = segment
                .pending
                .range(start_id..)
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                segment.remove(id);
            }
            let undone = if first >= start_id {
                self.segments[class.index()].remove(&first);
                remove_if_present(&path)
            } else {
                truncate(&path, len_before).map(|()| segment.len = len_before)
            };
            if let Err(e) = undone {
                tracing::warn!(
                    "spool: cannot undo a failed append: {e}; the next start repairs it"
                );
            }
        }
    }

    /// The newest segment of `class` when it is still open for appending.
    fn active(&self, class: Priority) -> Option<u64> {
        let (first, segment) = self.segments[class.index()].iter().next_back()?;
        segment.writer.is_some().then_some(*first)
    }

    /// Syncs and closes the active segment `first` of `class`.
    fn seal(&mut self, class: Priority, first: u64) -> Result<(), SpoolError> {
        let segment = self.segments[class.index()]
            .get_mut(&first)
            .expect("segment");
        if let Some(writer) = segment.writer.take() {
            let path = segment_path(&self.dir, class, first);
            writer.sync_data().map_err(io_err(&path, "sync"))?;
        }
        Ok(())
    }

    /// Drops the oldest normal segments until `size` more bytes fit under the
    /// cap or no normal segment is left.
    fn make_room(&mut self, size: u64) -> Result<(), SpoolError> {
        let why = format!("at its cap of {} bytes", self.max_bytes);
        while self.disk_bytes() + size > self.max_bytes {
            if !self.drop_oldest_normal(&why)? {
                break;
            }
        }
        Ok(())
    }

    /// Drops the oldest segment of normal records, counting and logging its
    /// unsent events with `why`; `false` when there is none.
    fn drop_oldest_normal(&mut self, why: &str) -> Result<bool, SpoolError> {
        let normal = &self.segments[Priority::Normal.index()];
        let Some((&first, segment)) = normal.iter().next() else {
            return Ok(false);
        };
        let count = segment.pending.len() as u64;
        let ids = segment
            .pending
            .keys()
            .next()
            .zip(segment.pending.keys().next_back())
            .map(|(lo, hi)| format!(" (ids {lo}..={hi})"))
            .unwrap_or_default();
        match self.remove_segments(&[(Priority::Normal, first)]) {
            Ok(()) => {}
            // No room even for the id file: delete first, then write it.
            // (Should the edge stop in between, the next start may give out
            // an id again that only this dropped segment had used: ids
            // order the spool, events are known by their own ids.)
            Err(e) if e.is_disk_full() => {
                for path in [
                    segment_path(&self.dir, Priority::Normal, first),
                    ack_path(&self.dir, Priority::Normal, first),
                ] {
                    remove_if_present(&path)?;
                }
                self.segments[Priority::Normal.index()].remove(&first);
                sync_dir(&self.dir)?;
                self.persist_seq()?;
            }
            Err(e) => return Err(e),
        }
        self.dropped += count;
        tracing::warn!(
            "spool {}: {why}; dropped the {count} oldest unsent events{ids}",
            self.dir.display()
        );
        Ok(true)
    }

    /// Returns up to `max_records` of the oldest pending records, alarms
    /// first, each class in id order, stopping before the payloads would
    /// pass `max_bytes` (the first record is returned whatever its size).
    pub fn peek(&self, max_records: usize, max_bytes: usize) -> Vec<Record> {
        let mut out = Vec::new();
        if max_records == 0 {
            return out;
        }
        let mut unreadable = self.unreadable.borrow_mut();
        let mut bytes = 0usize;
        let mut buf = Vec::new();
        for class in Priority::ALL {
            for (&first, segment) in &self.segments[class.index()] {
                let path = segment_path(&self.dir, class, first);
                let mut file = None;
                for (&id, entry) in &segment.pending {
                    if unreadable.contains(&id) {
                        continue;
                    }
                    let len = entry.len as usize;
                    if !out.is_empty() && bytes.saturating_add(len) > max_bytes {
                        return out;
                    }
                    let f = match &mut file {
                        Some(f) => f,
                        None => match File::open(&path) {
                            Ok(f) => file.insert(f),
                            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                                tracing::error!(
                                    "spool: {} has gone; its {} pending events are lost",
                                    path.display(),
                                    segment.pending.len()
                                );
                                unreadable.extend(segment.pending.keys());
                                break;
                            }
                            Err(e) => {
                                tracing::error!("spool: cannot read {}: {e}", path.display());
                                return out;
                            }
                        },
                    };
                    buf.resize(HEADER_LEN + len, 0);
                    let read = f
                        .seek(SeekFrom::Start(entry.offset))
                        .and_then(|_| f.read_exact(&mut buf));
                    let frame = format::Frame {
                        id,
                        offset: entry.offset,
                        len: entry.len,
                    };
                    match &read {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {}
                        Err(e) => {
                            tracing::error!("spool: cannot read {}: {e}", path.display());
                            return out;
                        }
                    }
                    let payload = read
                        .ok()
                        .and_then(|()| format::payload_of(&buf, &frame, class));
                    let Some(payload) = payload else {
                        tracing::error!(
                            "spool: {}: event {id} at offset {} is damaged and lost",
                            path.display(),
                            entry.offset
                        );
                        unreadable.insert(id);
                        continue;
                    };
                    bytes += len;
                    out.push(Record {
                        id,
                        priority: class,
                        payload: payload.to_vec(),
                    });
                    if out.len() >= max_records {
                        return out;
                    }
                }
            }
        }
        out
    }

    /// Marks records delivered, durably; unknown or already acknowledged
    /// ids are ignored. Segments left with nothing pending are deleted.
    pub fn ack(&mut self, ids: &[u64]) -> Result<(), SpoolError> {
        self.purge_unreadable();
        let mut groups: BTreeMap<(Priority, u64), BTreeSet<u64>> = BTreeMap::new();
        for &id in ids {
            if let Some(key) = self.locate(id) {
                groups.entry(key).or_default().insert(id);
            }
        }
        let mut finished = Vec::new();
        let mut new_files = false;
        let mut buf = Vec::new();
        for ((class, first), ids) in groups {
            let path = ack_path(&self.dir, class, first);
            let segment = self.segments[class.index()]
                .get_mut(&first)
                .expect("located");
            if ids.len() == segment.pending.len() {
                finished.push((class, first));
                continue;
            }
            buf.clear();
            for &id in &ids {
                format::encode_ack(&mut buf, id);
            }
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io_err(&path, "open"))?;
            if let Err(e) = file.write_all(&buf).and_then(|()| file.sync_data()) {
                // Keep later entries aligned; the next start cuts whatever is left.
                let _ = file.set_len(segment.ack_len);
                return Err(io_err(&path, "write")(e));
            }
            new_files |= segment.ack_len == 0;
            segment.ack_len += buf.len() as u64;
            for id in ids {
                segment.remove(id);
            }
        }
        if new_files {
            sync_dir(&self.dir)?;
        }
        let freed = !finished.is_empty();
        self.remove_segments(&finished)?;
        if freed {
            self.keep_reserve();
        }
        Ok(())
    }

    /// Counters and sizes.
    pub fn stats(&self) -> SpoolStats {
        let [alarms, normals] = &self.segments;
        let count = |m: &BTreeMap<u64, Segment>| m.values().map(|s| s.pending.len() as u64).sum();
        let bytes = |m: &BTreeMap<u64, Segment>| m.values().map(|s| s.pending_bytes).sum();
        SpoolStats {
            alarm_records: count(alarms),
            alarm_bytes: bytes(alarms),
            normal_records: count(normals),
            normal_bytes: bytes(normals),
            dropped: self.dropped,
            torn_tails_cut: self.torn_tails_cut,
            corrupt_skipped: self.corrupt_skipped,
            lost: self.lost,
            disk_bytes: self.disk_bytes(),
            segments: (alarms.len() + normals.len()) as u64,
        }
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn class_disk_bytes(&self, class: Priority) -> u64 {
        self.segments[class.index()]
            .values()
            .map(|s| s.len + s.ack_len)
            .sum()
    }

    fn disk_bytes(&self) -> u64 {
        Priority::ALL
            .into_iter()
            .map(|c| self.class_disk_bytes(c))
            .sum()
    }

    /// The segment holding pending record `id`.
    fn locate(&self, id: u64) -> Option<(Priority, u64)> {
        Priority::ALL.into_iter().find_map(|class| {
            let (first, segment) = self.segments[class.index()].range(..=id).next_back()?;
            segment.pending.contains_key(&id).then_some((class, *first))
        })
    }

    /// Deletes segments and their ack files, after making sure `spool.seq`
    /// covers every id given out.
    /// Makes the reserve file when it is missing and the disk has room.
    fn keep_reserve(&mut self) {
        if !self.reserve_missing {
            return;
        }
        let (path, tmp) = (self.dir.join(RESERVE_FILE), self.dir.join(RESERVE_TMP));
        if fs::metadata(&path).is_ok_and(|m| m.len() == RESERVE_BYTES) {
            self.reserve_missing = false;
            return;
        }
        let made = (|| -> io::Result<()> {
            let mut file = File::create(&tmp)?;
            let zeros = vec![0u8; 64 * 1024];
            let mut left = RESERVE_BYTES;
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                file.write_all(&zeros[..n])?;
                left -= n as u64;
            }
            file.sync_all()?;
            fs::rename(&tmp, &path)
        })();
        match made {
            Ok(()) => {
                self.reserve_missing = false;
                let _ = sync_dir(&self.dir);
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                tracing::debug!(
                    "spool {}: no reserve for alarms yet: {e}",
                    self.dir.display()
                );
            }
        }
    }

    /// Gives up the reserve file; `false` when there was none.
    fn release_reserve(&mut self) -> bool {
        let path = self.dir.join(RESERVE_FILE);
        match fs::remove_file(&path) {
            Ok(()) => {
                self.reserve_missing = true;
                tracing::warn!(
                    "spool {}: the disk is full and no plain read is left to drop; the \
                     {} MiB reserve was given up to store an alarm; free disk space",
                    self.dir.display(),
                    RESERVE_BYTES >> 20
                );
                true
            }
            Err(_) => false,
        }
    }

    fn remove_segments(&mut self, list: &[(Priority, u64)]) -> Result<(), SpoolError> {
        if list.is_empty() {
            return Ok(());
        }
        self.persist_seq()?;
        for &(class, first) in list {
            remove_if_present(&segment_path(&self.dir, class, first))?;
            self.segments[class.index()].remove(&first);
            remove_if_present(&ack_path(&self.dir, class, first))?;
        }
        sync_dir(&self.dir)
    }

    fn persist_seq(&mut self) -> Result<(), SpoolError> {
        if self.seq_on_disk >= self.next_id {
            return Ok(());
        }
        let tmp = self.dir.join(SEQ_TMP);
        File::create(&tmp)
            .and_then(|mut f| {
                f.write_all(&format::encode_seq(self.next_id))?;
                f.sync_all()
            })
            .map_err(io_err(&tmp, "write"))?;
        let path = self.dir.join(SEQ_FILE);
        fs::rename(&tmp, &path).map_err(io_err(&path, "replace"))?;
        sync_dir(&self.dir)?;
        self.seq_on_disk = self.next_id;
        Ok(())
    }

    /// Forgets the records `peek` found unreadable; segments left empty are
    /// deleted.
    fn purge_unreadable(&mut self) {
        let ids = std::mem::take(self.unreadable.get_mut());
        let mut emptied = Vec::new();
        for id in ids {
            let Some((class, first)) = self.locate(id) else {
                continue;
            };
            let segment = self.segments[class.index()]
                .get_mut(&first)
                .expect("located");
            segment.remove(id);
            self.lost += 1;
            if segment.pending.is_empty() {
                emptied.push((class, first));
            }
        }
        if let Err(e) = self.remove_segments(&emptied) {
            tracing::warn!("spool: {e}");
            for (class, first) in emptied {
                self.segments[class.index()].remove(&first);
            }
        }
    }
}

#[cfg(test)]
impl Spool {
    /// Writes the first `keep` bytes of the next record where `append`
    /// would put them, then stops as a crash would (nothing synced, nothing
    /// returned to a caller).
    fn crash_mid_append(mut self, priority: Priority, payload: &[u8], keep: usize) {
        let mut buf = Vec::new();
        format::encode_record(&mut buf, self.next_id, priority, payload);
        let keep = keep.min(buf.len() - 1);
        let size = buf.len() as u64;
        let fits = self.active(priority).filter(|first| {
            self.segments[priority.index()][first].len + size <= self.segment_bytes
        });
        let mut file = match fits {
            Some(first) => {
                let segment = self.segments[priority.index()].get_mut(&first).unwrap();
                segment.writer.take().unwrap()
            }
            None => OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(segment_path(&self.dir, priority, self.next_id))
                .unwrap(),
        };
        file.write_all(&buf[..keep]).unwrap();
    }

    /// Writes the first `keep` bytes of an ack entry for pending `id`, then
    /// stops as a crash would.
    fn crash_mid_ack(self, id: u64, keep: usize) {
        let (class, first) = self.locate(id).expect("pending id");
        let mut buf = Vec::new();
        format::encode_ack(&mut buf, id);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(ack_path(&self.dir, class, first))
            .unwrap();
        file.write_all(&buf[..keep.min(format::ACK_LEN - 1)])
            .unwrap();
    }
}
