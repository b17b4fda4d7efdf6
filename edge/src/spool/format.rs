//! The bytes on disk: record frames, ack entries and the sequence file.
//!
//! All integers are little-endian; checksums are CRC-32 (IEEE, `crc32fast`).

use std::ops::Range;

use super::Priority;

/// Start of every record frame; the trailing digit is the format version.
pub(super) const RECORD_MAGIC: [u8; 4] = *b"SCR1";
/// Bytes of a record header: magic, crc, length, priority, 3 reserved, id.
pub(super) const HEADER_LEN: usize = 24;
/// Start of every ack entry.
pub(super) const ACK_MAGIC: [u8; 4] = *b"SCA1";
/// Bytes of an ack entry: magic, id, crc.
pub(super) const ACK_LEN: usize = 16;
/// Start of the sequence file.
const SEQ_MAGIC: [u8; 4] = *b"SCQ1";
/// Bytes of the sequence file: magic, next id, crc.
pub(super) const SEQ_LEN: usize = 16;

impl Priority {
    fn byte(self) -> u8 {
        match self {
            Priority::Alarm => 0,
            Priority::Normal => 1,
        }
    }
}

fn record_crc(tail: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(tail);
    h.update(payload);
    h.finalize()
}

/// Appends the frame of one record to `out`.
///
/// The payload length must fit in a `u32`; callers check it against the
/// segment size first.
pub(super) fn encode_record(out: &mut Vec<u8>, id: u64, priority: Priority, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("payload length checked by the caller");
    let mut tail = [0u8; HEADER_LEN - 8];
    tail[0..4].copy_from_slice(&len.to_le_bytes());
    tail[4] = priority.byte();
    tail[8..16].copy_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&RECORD_MAGIC);
    out.extend_from_slice(&record_crc(&tail, payload).to_le_bytes());
    out.extend_from_slice(&tail);
    out.extend_from_slice(payload);
}

/// A record found in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Frame {
    pub id: u64,
    /// Offset of the frame (its header) in the segment file.
    pub offset: u64,
    /// Payload bytes.
    pub len: u32,
}

impl Frame {
    pub fn end(&self) -> u64 {
        self.offset + (HEADER_LEN as u64) + u64::from(self.len)
    }
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(data: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes"))
}

/// Checks the frame at `pos`: magic, complete, checksum, priority `class`,
/// reserved bytes zero and id at least `min_id`.
pub(super) fn parse_at(data: &[u8], pos: usize, class: Priority, min_id: u64) -> Option<Frame> {
    let rest = data.get(pos..)?;
    if rest.len() < HEADER_LEN || rest[0..4] != RECORD_MAGIC {
        return None;
    }
    let len = u32_at(rest, 8);
    let end = HEADER_LEN.checked_add(usize::try_from(len).ok()?)?;
    if rest.len() < end {
        return None;
    }
    let (tail, payload) = (&rest[8..HEADER_LEN], &rest[HEADER_LEN..end]);
    if tail[4] != class.byte() || tail[5..8] != [0, 0, 0] {
        return None;
    }
    if record_crc(tail, payload) != u32_at(rest, 4) {
        return None;
    }
    let id = u64_at(rest, 16);
    (id >= min_id).then_some(Frame {
        id,
        offset: pos as u64,
        len,
    })
}

/// Checks that `data` holds exactly the frame `frame` (used when reading a
/// record back) and returns its payload.
pub(super) fn payload_of<'a>(data: &'a [u8], frame: &Frame, class: Priority) -> Option<&'a [u8]> {
    let found = parse_at(data, 0, class, frame.id)?;
    (found.id == frame.id
        && found.len == frame.len
        && data.len() == HEADER_LEN + frame.len as usize)
        .then(|| &data[HEADER_LEN..])
}

/// What a scan of one segment file found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Scan {
    /// Valid records in file order; ids strictly increase.
    pub frames: Vec<Frame>,
    /// Damaged byte ranges that valid records follow (skipped, kept on disk).
    pub corrupt: Vec<Range<u64>>,
    /// Where an unusable tail starts (no valid record after it).
    pub torn_at: Option<u64>,
}

/// Reads every valid record of a segment whose first id is `first_id`.
///
/// A damaged frame is skipped by looking for the next valid frame (magic,
/// checksum, increasing id); if none follows, the damage is a torn tail.
pub(super) fn scan(data: &[u8], class: Priority, first_id: u64) -> Scan {
    let mut out = Scan::default();
    let mut pos = 0usize;
    let mut min_id = first_id;
    while pos < data.len() {
        if let Some(f) = parse_at(data, pos, class, min_id) {
            out.frames.push(f);
            min_id = f.id.saturating_add(1);
            pos = f.end() as usize;
            continue;
        }
        match resync(data, pos + 1, class, min_id) {
            Some(next) => {
                out.corrupt.push(pos as u64..next as u64);
                pos = next;
            }
            None => {
                out.torn_at = Some(pos as u64);
                break;
            }
        }
    }
    out
}

/// The first position at or after `from` where a valid frame starts.
fn resync(data: &[u8], from: usize, class: Priority, min_id: u64) -> Option<usize> {
    let mut at = from;
    while at + HEADER_LEN <= data.len() {
        let hit = data[at..].windows(4).position(|w| w == RECORD_MAGIC)?;
        at += hit;
        if parse_at(data, at, class, min_id).is_some() {
            return Some(at);
        }
        at += 1;
    }
    None
}

/// Appends the ack entry of `id` to `out`.
pub(super) fn encode_ack(out: &mut Vec<u8>, id: u64) {
    let start = out.len();
    out.extend_from_slice(&ACK_MAGIC);
    out.extend_from_slice(&id.to_le_bytes());
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// What a scan of an ack file found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct AckScan {
    /// Acknowledged ids.
    pub ids: Vec<u64>,
    /// Damaged ranges that valid entries follow.
    pub corrupt: usize,
    /// Where an unusable tail starts (a partial entry or garbage).
    pub torn_at: Option<usize>,
}

/// Reads the entries of an ack file, skipping damaged ranges the way
/// [`scan`] does.
pub(super) fn parse_acks(data: &[u8]) -> AckScan {
    let entry_at = |at: usize| {
        let e = data.get(at..at + ACK_LEN)?;
        (e[0..4] == ACK_MAGIC && crc32fast::hash(&e[0..12]) == u32_at(e, 12)).then(|| u64_at(e, 4))
    };
    let mut out = AckScan::default();
    let mut pos = 0;
    while pos < data.len() {
        if let Some(id) = entry_at(pos) {
            out.ids.push(id);
            pos += ACK_LEN;
            continue;
        }
        match (pos + 1..data.len()).find(|&at| entry_at(at).is_some()) {
            Some(next) => {
                out.corrupt += 1;
                pos = next;
            }
            None => {
                out.torn_at = Some(pos);
                break;
            }
        }
    }
    out
}

/// The sequence file's bytes for `next_id`.
pub(super) fn encode_seq(next_id: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(SEQ_LEN);
    out.extend_from_slice(&SEQ_MAGIC);
    out.extend_from_slice(&next_id.to_le_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The next id a sequence file holds, if it is intact.
pub(super) fn parse_seq(data: &[u8]) -> Option<u64> {
    (data.len() == SEQ_LEN
        && data[0..4] == SEQ_MAGIC
        && crc32fast::hash(&data[0..12]) == u32_at(data, 12))
    .then(|| u64_at(data, 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(records: &[(u64, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (id, p) in records {
            encode_record(&mut out, *id, Priority::Normal, p);
        }
        out
    }

    #[test]
    fn spool_format_round_trip_and_resync() {
        let data = frames(&[(3, b"abc"), (4, b""), (5, b"hello world")]);
        let s = scan(&data, Priority::Normal, 3);
        assert_eq!(s.frames.iter().map(|f| f.id).collect::<Vec<_>>(), [3, 4, 5]);
        assert!(s.corrupt.is_empty() && s.torn_at.is_none());
        // Wrong class: nothing is valid.
        assert_eq!(scan(&data, Priority::Alarm, 3).torn_at, Some(0));
        // A flipped payload bit in the first record: the rest is found.
        let mut bad = data.clone();
        bad[HEADER_LEN] ^= 0x10;
        let s = scan(&bad, Priority::Normal, 3);
        assert_eq!(s.frames.iter().map(|f| f.id).collect::<Vec<_>>(), [4, 5]);
        assert_eq!(s.corrupt, vec![0..(HEADER_LEN as u64 + 3)]);
        // Truncated last record: a torn tail.
        let cut = &data[..data.len() - 1];
        let s = scan(cut, Priority::Normal, 3);
        assert_eq!(s.frames.len(), 2);
        assert_eq!(s.torn_at, Some(s.frames[1].end()));
    }

    #[test]
    fn spool_format_acks_and_seq() {
        let mut a = Vec::new();
        encode_ack(&mut a, 7);
        encode_ack(&mut a, 9);
        encode_ack(&mut a, 11);
        a[20] ^= 1;
        let s = parse_acks(&a);
        assert_eq!((s.ids, s.corrupt, s.torn_at), (vec![7, 11], 1, None));
        let s = parse_acks(&a[..a.len() - 3]);
        assert_eq!((s.ids, s.corrupt, s.torn_at), (vec![7], 0, Some(16)));
        assert_eq!(parse_seq(&encode_seq(42)), Some(42));
        let mut s = encode_seq(42);
        s[5] ^= 1;
        assert_eq!(parse_seq(&s), None);
    }
}
