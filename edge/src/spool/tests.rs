use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::format::HEADER_LEN;
use super::*;

const BIG: u64 = 1 << 40;

fn open(dir: &Path, max_bytes: u64, segment_bytes: u64) -> Spool {
    Spool::open(SpoolConfig {
        dir: dir.to_path_buf(),
        max_bytes,
        segment_bytes,
    })
    .unwrap()
}

fn all(spool: &Spool) -> Vec<Record> {
    spool.peek(usize::MAX, usize::MAX)
}

fn ids(records: &[Record]) -> Vec<u64> {
    records.iter().map(|r| r.id).collect()
}

fn event(i: u64) -> Vec<u8> {
    format!("{{\"id\":\"ev-{i:04}\",\"kind\":\"plate_read\"}}").into_bytes()
}

/// Spool files in `dir` with the given extension, by name.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

fn last_segment(dir: &Path) -> PathBuf {
    files(dir, "seg").pop().expect("a segment")
}

#[test]
fn spool_directory_is_the_owners_alone() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    // A new folder, and one that was made readable by all before.
    let fresh = tmp.path().join("new/spool");
    let open_before = tmp.path().join("old");
    fs::create_dir(&open_before).unwrap();
    fs::set_permissions(&open_before, fs::Permissions::from_mode(0o755)).unwrap();
    for dir in [fresh, open_before] {
        let mut spool = open(&dir, BIG, DEFAULT_SEGMENT_BYTES);
        spool.append(Priority::Alarm, &event(1)).unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{} is {mode:o}", dir.display());
    }
}

#[test]
fn spool_append_peek_ack_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let mut spool = open(tmp.path(), BIG, DEFAULT_SEGMENT_BYTES);
    let got: Vec<u64> = (1..=5)
        .map(|i| spool.append(Priority::Normal, &event(i)).unwrap())
        .collect();
    assert_eq!(got, [1, 2, 3, 4, 5]);
    let first = spool.peek(3, usize::MAX);
    assert_eq!(ids(&first), [1, 2, 3]);
    assert_eq!(first[0].payload, event(1));
    assert_eq!(first[0].priority, Priority::Normal);
    // Peeking does not consume.
    assert_eq!(ids(&spool.peek(3, usize::MAX)), [1, 2, 3]);

    spool.ack(&[1, 3]).unwrap();
    assert_eq!(ids(&all(&spool)), [2, 4, 5]);
    // Acks of acknowledged or unknown ids are no-ops.
    spool.ack(&[1, 3, 99]).unwrap();
    assert_eq!(ids(&all(&spool)), [2, 4, 5]);

    // The byte limit: the first record always, then only what fits.
    let len = event(2).len();
    assert_eq!(ids(&spool.peek(10, 0)), [2]);
    assert_eq!(ids(&spool.peek(10, 2 * len)), [2, 4]);
    assert_eq!(ids(&spool.peek(10, 2 * len - 1)), [2]);
    assert!(spool.peek(0, usize::MAX).is_empty());

    let s = spool.stats();
    assert_eq!((s.normal_records, s.alarm_records), (3, 0));
    assert_eq!(s.normal_bytes, 3 * len as u64);
    assert_eq!(s.pending_records(), 3);
    assert_eq!(s.segments, 1);
}

#[test]
fn spool_alarms_come_before_normals() {
    let tmp = tempfile::tempdir().unwrap();
    let mut spool = open(tmp.path(), BIG, DEFAULT_SEGMENT_BYTES);
    spool.append(Priority::Normal, b"n1").unwrap();
    spool.append(Priority::Alarm, b"a2").unwrap();
    let batch = spool
        .append_many(&[
            (Priority::Normal, b"n3".as_slice()),
            (Priority::Alarm, b"a4"),
            (Priority::Normal, b""),
        ])
        .unwrap();
    assert_eq!(batch, [3, 4, 5]);
    let records = all(&spool);
    assert_eq!(ids(&records), [2, 4, 1, 3, 5]);
    assert_eq!(records[1].payload, b"a4");
    assert_eq!(records[1].priority, Priority::Alarm);
    assert_eq!(records[4].payload, b"");
    assert_eq!(ids(&spool.peek(1, usize::MAX)), [2]);
    assert_eq!(spool.append_many(&[]).unwrap(), Vec::<u64>::new());
    let s = spool.stats();
    assert_eq!(
        (s.alarm_records, s.normal_records, s.alarm_bytes),
        (2, 3, 4)
    );
}

#[test]
fn a_second_spool_on_the_same_directory_is_refused_until_the_first_closes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut first = open(tmp.path(), BIG, 300);
    first.append(Priority::Normal, &event(1)).unwrap();
    let config = SpoolConfig {
        dir: tmp.path().to_path_buf(),
        max_bytes: BIG,
        segment_bytes: 300,
    };
    let err = Spool::open(config.clone()).unwrap_err();
    assert!(matches!(err, SpoolError::Locked { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&tmp.path().display().to_string()) && message.contains("[spool] dir"),
        "{message}"
    );
    drop(first);
    let second = Spool::open(config).unwrap();
    assert_eq!(ids(&all(&second)), [1]);
}

#[test]
fn spool_reopen_keeps_unacked_and_forgets_acked() {
    let tmp = tempfile::tempdir().unwrap();
    let mut spool = open(tmp.path(), BIG, 300);
    for i in 1..=12 {
        let p = if i % 4 == 0 {
            Priority::Alarm
        } else {
            Priority::Normal
        };
        spool.append(p, &event(i)).unwrap();
    }
    spool.ack(&[1, 4, 6, 7, 11]).unwrap();
    let before = all(&spool);
    drop(spool);

    let mut spool = open(tmp.path(), BIG, 300);
    assert_eq!(all(&spool), before);
    assert_eq!(ids(&before), [8, 12, 2, 3, 5, 9, 10]);
    for r in &before {
        assert_eq!(r.payload, event(r.id));
    }
    assert_eq!(spool.append(Priority::Normal, b"new").unwrap(), 13);
    spool.ack(&[2, 8, 13]).unwrap();
    drop(spool);

    let spool = open(tmp.path(), BIG, 300);
    assert_eq!(ids(&all(&spool)), [12, 3, 5, 9, 10]);
    let s = spool.stats();
    assert_eq!((s.torn_tails_cut, s.corrupt_skipped, s.lost), (0, 0, 0));
}

#[test]
fn spool_torn_append_is_cut_at_every_offset() {
    let payload = b"{\"kind\":\"plate_read\"}";
    let size = HEADER_LEN + payload.len();
    for keep in 1..size {
        let tmp = tempfile::tempdir().unwrap();
        let mut spool = open(tmp.path(), BIG, DEFAULT_SEGMENT_BYTES);
        for i in 1..=3 {
            spool.append(Priority::Normal, &event(i)).unwrap();
        }
        let len = fs::metadata(last_segment(tmp.path())).unwrap().len();
        spool.crash_mid_append(Priority::Normal, payload, keep);

        let mut spool = open(tmp.path(), BIG, DEFAULT_SEGMENT_BYTES);
        assert_eq!(ids(&all(&spool)), [1, 2, 3], "keep {keep}");
        assert_eq!(spool.stats().torn_tails_cut, 1);
        assert_eq!(spool.stats().corrupt_skipped, 0);
        assert_eq!(fs::metadata(last_segment(tmp.path())).unwrap().len(), len);
        assert_eq!(spool.append(Priority::Normal, payload).unwrap(), 4);
        drop(spool);

        let spool = open(tmp.path(), BIG, DEFAULT_SEGMENT_BYTES);
        assert_eq!(ids(&all(&spool)), [1, 2, 3, 4]);
        assert_eq!(spool.stats().torn_tails_cut, 0);
    }
}

#[test]
fn spool_torn_first_record_of_new_segment_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut spool = open(tmp.path(), BIG, DEFAULT_SEGMENT_BYTES);
    spool.append(Priority::Normal, b"n1").unwrap();
    // No alarm segment yet: the torn alarm is the start of a new file.
    spool.crash_mid_append(Priority::Alarm, b"alarm", 10);
    assert_eq!(files(tmp.path(), "seg").len(), 2);
    let mut spool = open(tmp.path(), BIG, DEFAULT_SEGMENT_BYTES);
    assert_eq!(ids(&all(&spool)), [1]);
    assert_eq!(spool.stats().torn_tails_cut, 1);
    assert_eq!(files(tmp.path(), "seg").len(), 1);
    let id = spool.append(Priority::Alarm, b"alarm").unwrap();
    assert!(id > 1);
    assert_eq!(ids(&all(&spool)), [id, 1]);
}

#[test]
fn spool_truncated_last_record_is_cut_and_the_rest_survives() {
    let tmp = tempfile::tempdir().unwrap();
    let mut spool = open(tmp.path(), BIG, DEFAULT_SEGMENT_BYTES);
    for i in 1..=4 {
        spool.append(Priority::Normal, &event(i)).unwrap();
    }
    drop(spool);
    let path = last_segment(tmp.path());
    let full = fs::read(&path).unwrap();
    let last = (HEADER_LEN + event(4).len()) as u64;
    let start = full.len() as u64 - last;
    for cut in start + 1..full.len() as u64 {
        fs::write(&path, &full).unwrap();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let spool = open(tmp.path(), BIG, DEFAULT_SEGMENT_BYTES);
        assert_eq!(ids(&all(&spool)), [1, 2, 3], "cut at {cut}");
        assert_eq!(spool.stats().torn_tails_cut, 1);
        assert_eq!(fs::metadata(&path).unwrap().len(), start);
    }
}

#[test]
fn spool_garbage_after_the_last_record_is_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let mut spool = open(tmp.path(), BIG, DEFAULT_SEGMENT_BYTES);
    for i in 1..=3 {
        spool.append(Priority::Alarm, &event(i)).unwrap();
    }
    drop(spool);
    let path = last_segment(tmp.path());
    let len = fs::metadata(&path).unwrap().len();
    let mut garbage: Vec<u8> = (0..200u32).map(|i| (i * 37 % 251) as u8).collect();
    // A plausible-looking header in the garbage must not fool the scan.
    garbage[40..44].copy_from_slice(&format::RECORD_MAGIC);
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&garbage)
        .unwrap();
    let mut spool = open(tmp.path(), BIG, DEFAULT_SEGMENT_BYTES);
    assert_eq!(ids(&all(&spool)), [1, 2, 3]);
    assert_eq!(spool.stats().torn_tails_cut, 1);
    assert_eq!(fs::metadata(&path).unwrap().len(), len);
    assert_eq!(spool.append(Priority::Alarm, b"x").unwrap(), 4);
}

#[test]
fn spool_damaged_record_in_the_middle_does_not_lose_later_ones() {
    let size = (HEADER_LEN + event(1).len()) as u64;
    // Flip a payload byte, a length byte, a magic byte and an id byte.
    for (record, at) in [(2, HEADER_LEN + 3), (2, 9), (1, 0), (4, 17)] {
        let tmp = tempfile::tempdir().unwrap();
        let mut spool = open(tmp.path(), BIG, DEFAULT_SEGMENT_BYTES);
        for i in 1..=5 {
            spool.append(Priority::Normal, &event(i)).unwrap();
        }
        drop(spool);
        let path = last_segment(tmp.path());
        let mut data = fs::read(&path).unwrap();
        data[((record - 1) * size) as usize + at] ^= 0x40;
        fs::write(&path, &data).unwrap();

        let mut spool = open(tmp.path(), BIG, DEFAULT_SEGMENT_BYTES);
        let want: Vec<u64> = (1..=5).filter(|&i| i != record).collect();
        assert_eq!(ids(&all(&spool)), want, "record {record} byte {at}");
        let s = spool.stats();
        assert_eq!((s.corrupt_skipped, s.torn_tails_cut), (1, 0));
        spool.ack(&want).unwrap();
        assert!(files(tmp.path(), "seg").is_empty());
    }
}

#[test]
fn spool_cap_drops_oldest_normals_and_never_alarms() {
    let tmp = tempfile::tempdir().unwrap();
    let payload = [7u8; 50];
    let size = (HEADER_LEN + payload.len()) as u64;
    let max = 12 * size;
    let mut spool = open(tmp.path(), max, 3 * size);
    let a1 = spool.append(Priority::Alarm, &payload).unwrap();
    let a2 = spool.append(Priority::Alarm, &payload).unwrap();
    let normals: Vec<u64> = (0..30)
        .map(|_| spool.append(Priority::Normal, &payload).unwrap())
        .collect();
    let s = spool.stats();
    assert!(s.dropped > 0);
    assert!(s.disk_bytes <= max, "{s:?}");
    assert_eq!(s.dropped + s.normal_records, 30);
    assert_eq!(s.alarm_records, 2);
    let records = all(&spool);
    let kept: Vec<u64> = records
        .iter()
        .filter(|r| r.priority == Priority::Normal)
        .map(|r| r.id)
        .collect();
    // What is left is the newest normals, in one run.
    assert_eq!(kept, normals[normals.len() - kept.len()..]);
    assert_eq!(ids(&records[..2]), [a1, a2]);

    // Alarms go in over the cap, after every normal record is dropped.
    for _ in 0..20 {
        spool.append(Priority::Alarm, &payload).unwrap();
    }
    let s = spool.stats();
    assert_eq!((s.alarm_records, s.normal_records, s.dropped), (22, 0, 30));
    assert!(s.disk_bytes > max);

    // A normal event no longer fits beside them: refused, nothing dropped.
    let err = spool.append(Priority::Normal, &payload).unwrap_err();
    assert!(matches!(err, SpoolError::Full { .. }), "{err}");
    assert!(err.to_string().contains(&tmp.path().display().to_string()));
    assert_eq!(spool.stats().dropped, 30);
    assert_eq!(spool.stats().alarm_records, 22);

    // Once alarms are delivered there is room again.
    let alarms = ids(&spool.peek(22, usize::MAX));
    spool.ack(&alarms).unwrap();
    assert!(spool.append(Priority::Normal, &payload).is_ok());
    assert_eq!(spool.stats().disk_bytes, size);
}

#[test]
fn spool_acknowledged_segments_are_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let payload = [1u8; 40];
    let size = (HEADER_LEN + payload.len()) as u64;
    let mut spool = open(tmp.path(), BIG, 3 * size);
    let got = spool
        .append_many(&[(Priority::Normal, payload.as_slice()); 9])
        .unwrap();
    assert_eq!(got, (1..=9).collect::<Vec<_>>());
    assert_eq!(files(tmp.path(), "seg").len(), 3);
    spool.ack(&[1, 2, 3]).unwrap();
    assert_eq!(files(tmp.path(), "seg").len(), 2);
    spool.ack(&[5]).unwrap();
    assert_eq!(files(tmp.path(), "ack").len(), 1);
    assert_eq!(spool.stats().disk_bytes, 6 * size + format::ACK_LEN as u64);
    drop(spool);

    let mut spool = open(tmp.path(), BIG, 3 * size);
    assert_eq!(ids(&all(&spool)), [4, 6, 7, 8, 9]);
    spool.ack(&[4, 6, 7, 8, 9]).unwrap();
    assert!(files(tmp.path(), "seg").is_empty());
    assert!(files(tmp.path(), "ack").is_empty());
    assert_eq!(spool.stats(), SpoolStats::default());
    drop(spool);

    // Ids keep increasing though every segment has gone.
    let mut spool = open(tmp.path(), BIG, 3 * size);
    assert_eq!(spool.append(Priority::Alarm, b"a").unwrap(), 10);
}

#[test]
fn spool_files_of_others_are_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let other = tmp.path().join("rejected.jsonl");
    fs::write(&other, b"{}\n").unwrap();
    let mut spool = open(tmp.path(), BIG, DEFAULT_SEGMENT_BYTES);
    let id = spool.append(Priority::Normal, b"x").unwrap();
    spool.ack(&[id]).unwrap();
    drop(spool);
    open(tmp.path(), BIG, DEFAULT_SEGMENT_BYTES);
    assert_eq!(fs::read(&other).unwrap(), b"{}\n");
}

#[test]
fn spool_oversized_record_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut spool = open(tmp.path(), BIG, 128);
    let fits = vec![b'x'; 128 - HEADER_LEN];
    let too_big = vec![b'x'; 129 - HEADER_LEN];
    let err = spool.append(Priority::Alarm, &too_big).unwrap_err();
    assert!(
        matches!(err, SpoolError::TooLarge { size: 129, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");
    assert!(msg.contains("128"), "{msg}");
    // A batch with one oversized record stores none of them.
    let err = spool
        .append_many(&[
            (Priority::Normal, fits.as_slice()),
            (Priority::Normal, &too_big),
        ])
        .unwrap_err();
    assert!(matches!(err, SpoolError::TooLarge { .. }));
    assert!(all(&spool).is_empty());
    assert_eq!(spool.append(Priority::Normal, &fits).unwrap(), 1);
    assert_eq!(spool.append(Priority::Normal, &fits).unwrap(), 2);
    assert_eq!(files(tmp.path(), "seg").len(), 2);
}

#[test]
fn spool_errors_name_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    fs::write(&file, b"").unwrap();
    let err = Spool::open(SpoolConfig {
        dir: file.clone(),
        max_bytes: BIG,
        segment_bytes: DEFAULT_SEGMENT_BYTES,
    })
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SpoolError::Dir { .. }), "{msg}");
    assert!(msg.contains(&file.display().to_string()), "{msg}");
    assert!(msg.contains("permissions"), "{msg}");

    for (max_bytes, segment_bytes) in [(0, 1024), (BIG, 10)] {
        let err = Spool::open(SpoolConfig {
            dir: tmp.path().to_path_buf(),
            max_bytes,
            segment_bytes,
        })
        .unwrap_err();
        assert!(matches!(err, SpoolError::Config { .. }));
        assert!(err.to_string().contains(&tmp.path().display().to_string()));
    }
}

#[test]
fn spool_torn_ack_is_cut_and_the_records_stay() {
    let tmp = tempfile::tempdir().unwrap();
    let mut spool = open(tmp.path(), BIG, DEFAULT_SEGMENT_BYTES);
    for i in 1..=3 {
        spool.append(Priority::Normal, &event(i)).unwrap();
    }
    spool.ack(&[1]).unwrap();
    spool.crash_mid_ack(2, 9);
    let mut spool = open(tmp.path(), BIG, DEFAULT_SEGMENT_BYTES);
    assert_eq!(ids(&all(&spool)), [2, 3]);
    assert_eq!(spool.stats().torn_tails_cut, 1);
    spool.ack(&[2]).unwrap();
    drop(spool);
    let spool = open(tmp.path(), BIG, DEFAULT_SEGMENT_BYTES);
    assert_eq!(ids(&all(&spool)), [3]);
    assert_eq!(spool.stats().torn_tails_cut, 0);
}

#[test]
fn spool_vanished_segment_loses_only_its_records() {
    let tmp = tempfile::tempdir().unwrap();
    let payload = [3u8; 50];
    let seg = (HEADER_LEN + payload.len()) as u64;
    let mut spool = open(tmp.path(), BIG, seg);
    for _ in 0..3 {
        spool.append(Priority::Normal, &payload).unwrap();
    }
    fs::remove_file(&files(tmp.path(), "seg")[1]).unwrap();
    assert_eq!(ids(&all(&spool)), [1, 3]);
    spool.ack(&[1]).unwrap();
    let s = spool.stats();
    assert_eq!((s.lost, s.normal_records, s.segments), (1, 1, 1));
    assert_eq!(spool.append(Priority::Normal, &payload).unwrap(), 4);
    drop(spool);
    let spool = open(tmp.path(), BIG, seg);
    assert_eq!(ids(&all(&spool)), [3, 4]);
}

#[test]
fn spool_damaged_record_found_by_peek_is_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let mut spool = open(tmp.path(), BIG, DEFAULT_SEGMENT_BYTES);
    for i in 1..=3 {
        spool.append(Priority::Normal, &event(i)).unwrap();
    }
    let path = last_segment(tmp.path());
    let mut data = fs::read(&path).unwrap();
    data[HEADER_LEN + 2] ^= 1;
    fs::write(&path, &data).unwrap();
    assert_eq!(ids(&all(&spool)), [2, 3]);
    spool.ack(&[2]).unwrap();
    assert_eq!(spool.stats().lost, 1);
    assert_eq!(ids(&all(&spool)), [3]);
}

#[test]
fn spool_is_send() {
    fn send<T: Send>() {}
    send::<Spool>();
}

// The model test: random operations, crashes included, against a map of
// what must be pending.

#[derive(Debug, Clone)]
enum Op {
    Append(Priority, usize),
    AppendMany(Vec<(Priority, usize)>),
    PeekAck {
        max_records: usize,
        max_bytes: usize,
        mask: u64,
        again: bool,
    },
    /// Drops the spool as a crash would, optionally in the middle of an
    /// append (priority, payload length, where the write stops), and opens
    /// it again.
    Crash(Option<(Priority, usize, usize)>),
}

fn priority() -> impl Strategy<Value = Priority> {
    prop_oneof![1 => Just(Priority::Alarm), 3 => Just(Priority::Normal)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (priority(), 0..160usize).prop_map(|(p, len)| Op::Append(p, len)),
        2 => prop::collection::vec((priority(), 0..160usize), 0..6).prop_map(Op::AppendMany),
        4 => (1..12usize, 1..1200usize, any::<u64>(), any::<bool>()).prop_map(
            |(max_records, max_bytes, mask, again)| Op::PeekAck {
                max_records,
                max_bytes,
                mask,
                again,
            }
        ),
        1 => prop::option::of((priority(), 0..160usize, any::<usize>())).prop_map(Op::Crash),
    ]
}

#[derive(Debug, Default)]
struct Model {
    pending: BTreeMap<u64, (Priority, Vec<u8>)>,
    acked: BTreeSet<u64>,
    dropped: BTreeSet<u64>,
    last_id: u64,
    payloads: u64,
    /// `stats().dropped` already matched to records.
    dropped_seen: u64,
}

impl Model {
    fn payload(&mut self, len: usize) -> Vec<u8> {
        self.payloads += 1;
        let seed = self.payloads as usize;
        (0..len).map(|i| (seed * 131 + i * 7) as u8).collect()
    }

    fn expected(&self) -> Vec<Record> {
        let mut out: Vec<Record> = self
            .pending
            .iter()
            .map(|(&id, (priority, payload))| Record {
                id,
                priority: *priority,
                payload: payload.clone(),
            })
            .collect();
        out.sort_by_key(|r| (r.priority, r.id));
        out
    }

    fn appended(
        &mut self,
        id: u64,
        priority: Priority,
        payload: Vec<u8>,
    ) -> Result<(), TestCaseError> {
        prop_assert!(id > self.last_id, "id {} after {}", id, self.last_id);
        self.last_id = id;
        self.pending.insert(id, (priority, payload));
        Ok(())
    }

    /// Matches the spool's content to the model: records the cap dropped
    /// leave the model, anything else must be exactly as expected.
    fn reconcile(&mut self, spool: &Spool, capped: bool) -> Result<(), TestCaseError> {
        let records = all(spool);
        let stats = spool.stats();
        let present: BTreeSet<u64> = records.iter().map(|r| r.id).collect();
        for r in &records {
            prop_assert!(
                self.pending.contains_key(&r.id),
                "record {} is back (acked {}, dropped {})",
                r.id,
                self.acked.contains(&r.id),
                self.dropped.contains(&r.id)
            );
        }
        let missing: Vec<u64> = self
            .pending
            .keys()
            .filter(|id| !present.contains(id))
            .copied()
            .collect();
        prop_assert!(capped || missing.is_empty(), "lost {:?}", missing);
        for id in &missing {
            prop_assert_eq!(self.pending[id].0, Priority::Normal, "alarm {} dropped", id);
        }
        let oldest_kept = records
            .iter()
            .filter(|r| r.priority == Priority::Normal)
            .map(|r| r.id)
            .min();
        if let (Some(&newest_dropped), Some(oldest_kept)) = (missing.last(), oldest_kept) {
            prop_assert!(
                newest_dropped < oldest_kept,
                "dropped {} before {}",
                oldest_kept,
                newest_dropped
            );
        }
        prop_assert_eq!(stats.dropped - self.dropped_seen, missing.len() as u64);
        self.dropped_seen = stats.dropped;
        for id in missing {
            self.pending.remove(&id);
            self.dropped.insert(id);
        }
        prop_assert_eq!(&records, &self.expected());
        let alarms = records.iter().filter(|r| r.priority == Priority::Alarm);
        prop_assert_eq!(stats.alarm_records, alarms.clone().count() as u64);
        prop_assert_eq!(
            stats.alarm_bytes,
            alarms.map(|r| r.payload.len() as u64).sum::<u64>()
        );
        prop_assert_eq!(stats.pending_records(), records.len() as u64);
        prop_assert_eq!(
            stats.pending_bytes(),
            records.iter().map(|r| r.payload.len() as u64).sum::<u64>()
        );
        prop_assert_eq!((stats.lost, stats.corrupt_skipped), (0, 0));
        Ok(())
    }
}

fn is_too_large(segment_bytes: u64, len: usize) -> bool {
    (HEADER_LEN + len) as u64 > segment_bytes
}

fn run_model(segment_bytes: u64, cap: Option<u64>, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().unwrap();
    let config = SpoolConfig {
        dir: tmp.path().to_path_buf(),
        max_bytes: cap.unwrap_or(BIG),
        segment_bytes,
    };
    let capped = cap.is_some();
    let mut spool = Spool::open(config.clone()).unwrap();
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Append(priority, len) => {
                let payload = model.payload(len);
                match spool.append(priority, &payload) {
                    Ok(id) => {
                        prop_assert!(!is_too_large(segment_bytes, len));
                        model.appended(id, priority, payload)?;
                    }
                    Err(SpoolError::TooLarge { .. }) => {
                        prop_assert!(is_too_large(segment_bytes, len));
                    }
                    Err(SpoolError::Full { .. }) if capped && priority == Priority::Normal => {}
                    Err(e) => return Err(TestCaseError::fail(e.to_string())),
                }
            }
            Op::AppendMany(items) => {
                let payloads: Vec<(Priority, Vec<u8>)> = items
                    .iter()
                    .map(|&(p, len)| (p, model.payload(len)))
                    .collect();
                let batch: Vec<(Priority, &[u8])> =
                    payloads.iter().map(|(p, v)| (*p, v.as_slice())).collect();
                let too_large = items
                    .iter()
                    .any(|&(_, len)| is_too_large(segment_bytes, len));
                let normals = items.iter().any(|&(p, _)| p == Priority::Normal);
                match spool.append_many(&batch) {
                    Ok(ids) => {
                        prop_assert!(!too_large);
                        prop_assert_eq!(ids.len(), payloads.len());
                        for (id, (p, payload)) in ids.into_iter().zip(payloads) {
                            model.appended(id, p, payload)?;
                        }
                    }
                    Err(SpoolError::TooLarge { .. }) => prop_assert!(too_large),
                    Err(SpoolError::Full { .. }) if capped && normals => {}
                    Err(e) => return Err(TestCaseError::fail(e.to_string())),
                }
            }
            Op::PeekAck {
                max_records,
                max_bytes,
                mask,
                again,
            } => {
                let batch = spool.peek(max_records, max_bytes);
                let mut want = Vec::new();
                let mut bytes = 0;
                for r in model.expected() {
                    if want.len() == max_records
                        || (!want.is_empty() && bytes + r.payload.len() > max_bytes)
                    {
                        break;
                    }
                    bytes += r.payload.len();
                    want.push(r);
                }
                prop_assert_eq!(&batch, &want);
                let mut chosen: Vec<u64> = batch
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask >> (i % 64) & 1 == 1)
                    .map(|(_, r)| r.id)
                    .collect();
                let mut to_ack = chosen.clone();
                if again {
                    to_ack.extend(model.acked.iter().next());
                    to_ack.extend(model.dropped.iter().next());
                    to_ack.push(model.last_id + 1000);
                    to_ack.extend(chosen.first());
                }
                spool.ack(&to_ack).unwrap();
                for id in chosen.drain(..) {
                    model.pending.remove(&id);
                    model.acked.insert(id);
                }
            }
            Op::Crash(torn) => {
                let torn = torn.filter(|&(_, len, _)| !is_too_large(segment_bytes, len));
                match torn {
                    Some((priority, len, keep)) => {
                        let payload = model.payload(len);
                        let keep = 1 + keep % (HEADER_LEN + len - 1);
                        spool.crash_mid_append(priority, &payload, keep);
                    }
                    None => drop(spool),
                }
                spool = Spool::open(config.clone()).unwrap();
                model.dropped_seen = 0;
                let s = spool.stats();
                prop_assert_eq!(s.torn_tails_cut, u64::from(torn.is_some()));
                prop_assert_eq!(s.dropped, 0);
            }
        }
        model.reconcile(&spool, capped)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn spool_matches_model_through_crashes(
        segment_bytes in prop_oneof![Just(160u64), Just(400), Just(64 * 1024)],
        cap in prop::option::of(600..3000u64),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        run_model(segment_bytes, cap, ops)?;
    }
}

/// A tmpfs of `kib` KiB mounted on a new folder, unmounted when dropped;
/// `None` (said on standard error) where mounting is not allowed.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(kib: u64) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            let msg = "cannot mount a tmpfs (needs root): skipping this full-disk test";
            assert!(
                std::env::var_os("CI").is_none(),
                "{msg} (CI is set: this is a failure there)"
            );
            let _ = writeln!(io::stderr().lock(), "SKIPPED: {msg}");
            return None;
        }
        Some(SmallDisk { dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn on_a_full_disk_older_plain_reads_make_room_for_an_alarm() {
    let Some(disk) = SmallDisk::mount(256) else {
        return;
    };
    // The cap is far above the disk: the disk fills first.
    let dir = disk.dir.path().join("spool");
    let mut spool = open(&dir, BIG, 16 * 1024);
    let payload = vec![b'x'; 1000];
    let mut newest = 0;
    while spool.stats().dropped == 0 {
        newest = spool
            .append(Priority::Normal, &payload)
            .expect("a plain read is stored, once the disk is full by dropping older ones");
        assert!(newest < 10_000, "the disk never filled");
    }
    // The oldest plain reads went; the newest is there.
    let before = all(&spool);
    assert!((before.len() as u64) < newest);
    assert_eq!(before.last().unwrap().id, newest);

    let alarm = spool
        .append(Priority::Alarm, &event(1))
        .expect("the alarm is stored");
    let records = all(&spool);
    assert_eq!(records[0].id, alarm);
    assert_eq!(records[0].priority, Priority::Alarm);
    assert_eq!(records.last().unwrap().id, newest);
    drop(spool);
    // The spool reopens with the alarm first.
    let spool = open(&dir, BIG, 16 * 1024);
    assert_eq!(all(&spool)[0].id, alarm);
}

#[test]
fn on_a_disk_other_files_filled_the_reserve_stores_alarms() {
    let Some(disk) = SmallDisk::mount(8 * 1024) else {
        return;
    };
    let dir = disk.dir.path().join("spool");
    let mut spool = open(&dir, BIG, 16 * 1024);
    let reserve = dir.join(RESERVE_FILE);
    assert_eq!(std::fs::metadata(&reserve).unwrap().len(), RESERVE_BYTES);
    // Something else fills the disk to the last byte; the spool holds no
    // plain read it could drop.
    let ballast = disk.dir.path().join("ballast");
    let mut f = File::create(&ballast).unwrap();
    let block = vec![1u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    while f.write_all(&block[..512]).is_ok() {}
    drop(f);
    let plain = spool.append(Priority::Normal, &event(1));
    assert!(
        plain.as_ref().is_err_and(SpoolError::is_disk_full),
        "{plain:?}"
    );
    assert!(reserve.exists(), "a plain read does not take the reserve");

    let alarm = spool
        .append(Priority::Alarm, &event(2))
        .expect("the alarm is stored in the reserve's room");
    assert!(!reserve.exists());
    assert_eq!(all(&spool)[0].id, alarm);
    drop(spool);
    let mut spool = open(&dir, BIG, 16 * 1024);
    assert_eq!(all(&spool)[0].id, alarm, "the alarm survives a restart");

    // Room again, and the alarm delivered: the reserve comes back.
    std::fs::remove_file(&ballast).unwrap();
    spool.ack(&[alarm]).unwrap();
    assert_eq!(std::fs::metadata(&reserve).unwrap().len(), RESERVE_BYTES);
}
