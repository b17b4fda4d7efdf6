//! The fuzz targets: what each feeds its decoder, its seeds and tokens, and
//! the rule a result must keep beyond not panicking.

use std::io::{Read, Write};
use std::path::Path;

use safecity_core::{normalize_plate, parse_plate, PlatePattern};
use safecity_edge::spool::{Priority, Spool, SpoolConfig};
use safecity_server::{PlateIndex, PlateQuery};

/// A decoder under fuzzing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `POST /api/v1/events` bodies. The first byte picks the encoding:
    /// `g` gzips the rest before decoding, `z` hands the rest over as gzip
    /// bytes, anything else is the JSON itself. Rule: a batch said
    /// accepted holds as many events as the JSON array.
    Ingest,
    /// `GET /api/v1/search` query strings.
    Search,
    /// Plate texts and patterns: the first line is a query, the others
    /// plates. Rules: a parsed plate parses again from its display form to
    /// the same text; the plate index answers wildcard and fuzzy queries as
    /// a scan of the same plates does.
    Plate,
    /// The edge spool's files after a crash or a bad disk: the first byte
    /// picks the file (segment, ack file or sequence file) the rest
    /// replaces in a spool of three records. Rules: opening recovers; no
    /// record comes back that was not written; the spool then still takes
    /// and returns a new record.
    Spool,
    /// `safecity-edge run --config` files.
    EdgeConfig,
    /// `safecity-server --config` files.
    ServerConfig,
    /// Model description files (`<model>.toml`).
    ModelDescription,
}

const ALL: [Target; 7] = [
    Target::Ingest,
    Target::Search,
    Target::Plate,
    Target::Spool,
    Target::EdgeConfig,
    Target::ServerConfig,
    Target::ModelDescription,
];

const SPOOL_RECORDS: [&[u8]; 3] = [
    br#"{"id":"01JD3Q6Z8W4M2K9T7R5N1C0XYZ","kind":"vehicle"}"#,
    br#"{"id":"01JD3Q6Z8W4M2K9T7R5N1C0XZ0","kind":"plate_read"}"#,
    br#"{"id":"01JD3Q6Z8W4M2K9T7R5N1C0XZ1","kind":"panic_alarm"}"#,
];
const NEW_RECORD: &[u8] = br#"{"id":"01JD3Q6Z8W4M2K9T7R5N1C0XZ2","kind":"vehicle"}"#;

impl Target {
    /// Every target.
    pub fn all() -> &'static [Target] {
        &ALL
    }

    /// The name on the command line and of the regressions folder.
    pub fn name(self) -> &'static str {
        match self {
            Target::Ingest => "ingest",
            Target::Search => "search",
            Target::Plate => "plate",
            Target::Spool => "spool",
            Target::EdgeConfig => "edge-config",
            Target::ServerConfig => "server-config",
            Target::ModelDescription => "model-description",
        }
    }

    /// The target named `name`.
    pub fn by_name(name: &str) -> Option<Target> {
        ALL.iter().copied().find(|t| t.name() == name)
    }

    /// Valid inputs the mutations start from.
    pub fn seeds(self) -> Vec<Vec<u8>> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let file = |p: &str| std::fs::read(root.join(p)).unwrap_or_default();
        match self {
            Target::Ingest => {
                let batch = br#"[{"id":"01JD3Q6Z8W4M2K9T7R5N1C0XYZ","kind":"plate_read","edge_id":"edge-alm-01","camera_id":"alm-cam-0042","ts":"2026-11-22T10:15:30.123Z","plate":{"text":"123ABC02","display":"123 ABC 02","confidence":0.97,"format":"kz_private","region":"02","candidates":[{"text":"123ABC02","confidence":0.97}],"bbox":[812,540,96,24]},"vehicle":{"class":"car","colour":"white","confidence":0.91,"bbox":[700,380,320,210],"track_id":17},"snapshot":"aGVsbG8="},{"id":"01JD3Q6Z8W4M2K9T7R5N1C0XZ0","kind":"panic_alarm","edge_id":"edge-alm-01","camera_id":"alm-pillar-7","ts":"2026-11-22T10:15:31Z","alarm":{"source":"button"}},{"id":"01jd3q6z8w4m2k9t7r5n1c0xz1","kind":"camera_status","edge_id":"edge-alm-01","camera_id":"alm-cam-0042","ts":"2026-11-22T10:15:32Z","status":{"state":"offline","message":"no frames for 10 s"}}]"#;
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(batch).unwrap();
                let gz = gz.finish().unwrap();
                vec![
                    batch.to_vec(),
                    [b"g".as_slice(), batch].concat(),
                    [b"z".as_slice(), &gz].concat(),
                    b"[]".to_vec(),
                ]
            }
            Target::Search => [
                "plate=123ABC02&reason=case%2017",
                "plate=12%3F*02&mode=wildcard&reason=x&limit=500",
                "plate=123ABC02&mode=fuzzy&max_distance=1.5&reason=x&from=2026-11-22T00:00:00Z&to=2026-11-23T00:00:00Z",
                "camera=a&camera=b&near=43.2389,76.8897,500&class=car&colour=white&kind=plate_read&reason=x",
                "reason=x&cursor=MTc2NDAwMDAwMDAwMDowMUpEM1E2WjhXNE0ySzlUN1I1TjFDMFhZWg",
            ]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect(),
            Target::Plate => vec![
                "123ABC02\n123ABC02\n123ABD02\n777FLT02\n".into(),
                "12?A*\n123ABC02\n123 abc 02\n1234AB02\n".into(),
                "*02\nA123BCD\n123ABC02\n".into(),
                "123АВС02\n123ABC02\n".as_bytes().to_vec(),
            ],
            Target::Spool => spool_seeds(),
            Target::EdgeConfig => vec![file("edge/edge.example.toml")],
            Target::ServerConfig => vec![file("server/safecity-server.example.toml")],
            Target::ModelDescription => [
                "models/safecity-detector.toml",
                "models/safecity-plate.toml",
                "models/safecity-plate-strong.toml",
                "models/safecity-colour.toml",
            ]
            .iter()
            .map(|p| file(p))
            .collect(),
        }
    }

    /// Pieces of the input's language that mutations insert.
    pub fn tokens(self) -> &'static [&'static [u8]] {
        match self {
            Target::Ingest => &[
                b"null",
                b"true",
                b"-1",
                b"1e999",
                b"\"\"",
                b"{}",
                b"[]",
                b",",
                b":",
                b"\"\\u0000\"",
                b"\"\\ud800\"",
                b"18446744073709551616",
                b"0.0",
                b"\"kind\":\"vehicle\"",
                b"\"ts\":\"0000-01-01T00:00:00Z\"",
                b"\"id\":\"",
                b"NaN",
            ],
            Target::Search => &[
                b"&",
                b"=",
                b"%",
                b"%00",
                b"%FF",
                b"plate=",
                b"mode=fuzzy",
                b"mode=wildcard",
                b"max_distance=",
                b"near=",
                b"limit=",
                b"cursor=",
                b"from=",
                b"to=",
                b"*",
                b"?",
                b"NaN",
                b"-1",
                b"1e308",
                b"reason=",
            ],
            Target::Plate => &[
                b"*",
                b"?",
                b"\n",
                b" ",
                b"-",
                b"\xd0\x90",
                b"\xd0\x81",
                b"0",
                b"O",
            ],
            Target::Spool => &[
                b"SCR1",
                b"SCA1",
                b"SCQ1",
                b"\0\0\0\0\0\0\0\0",
                b"\xff\xff\xff\xff\xff\xff\xff\xff",
            ],
            Target::EdgeConfig | Target::ServerConfig | Target::ModelDescription => &[
                b"=",
                b"\"",
                b"[",
                b"]",
                b"[[",
                b"]]",
                b"\n",
                b"#",
                b"-1",
                b"1e999",
                b"nan",
                b"inf",
                b"true",
                b"{}",
                b"\"\"",
                b"0",
                b"18446744073709551616",
            ],
        }
    }

    /// Runs one input; `Err` when a result breaks the target's rule.
    pub fn run(self, input: &[u8]) -> Result<(), String> {
        match self {
            Target::Ingest => ingest(input),
            Target::Search => {
                let _ = safecity_server::fuzzing::search_params(&String::from_utf8_lossy(input));
                Ok(())
            }
            Target::Plate => plate(&String::from_utf8_lossy(input)),
            Target::Spool => spool(input),
            Target::EdgeConfig => with_file(input, |p| {
                let _ = safecity_edge::config::EdgeConfig::load(p);
            }),
            Target::ServerConfig => with_file(input, |p| {
                if let Ok(c) = safecity_server::ServerConfig::load(p) {
                    let _ = c.validate();
                }
            }),
            Target::ModelDescription => with_file(input, |p| {
                let _ = safecity_models::ModelDescription::from_file(p);
            }),
        }
    }
}

fn ingest(input: &[u8]) -> Result<(), String> {
    let (encoding, body, json) = match input.split_first() {
        Some((b'g', rest)) => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(rest).unwrap();
            (Some("gzip"), gz.finish().unwrap(), Some(rest.to_vec()))
        }
        Some((b'z', rest)) => {
            let mut json = Vec::new();
            let ok = flate2::read::MultiGzDecoder::new(rest)
                .read_to_end(&mut json)
                .is_ok();
            (Some("gzip"), rest.to_vec(), ok.then_some(json))
        }
        _ => (None, input.to_vec(), Some(input.to_vec())),
    };
    match safecity_server::fuzzing::ingest_body(encoding, &body) {
        Err(_) => Ok(()),
        Ok(n) => {
            let Some(json) = json else {
                return Err(format!("{n} events accepted from a body that is not gzip"));
            };
            match serde_json::from_slice::<Vec<serde_json::Value>>(&json) {
                Ok(v) if v.len() == n => Ok(()),
                Ok(v) => Err(format!("{n} events accepted from an array of {}", v.len())),
                Err(e) => Err(format!(
                    "{n} events accepted from a body that is not a JSON array: {e}"
                )),
            }
        }
    }
}

fn plate(text: &str) -> Result<(), String> {
    let mut lines = text.lines();
    let query = lines.next().unwrap_or("");
    let plates: Vec<String> = lines
        .filter_map(|l| normalize_plate(l).ok())
        .filter(|p| !p.is_empty())
        .collect();
    for raw in std::iter::once(query).chain(text.lines()) {
        if let Ok(p) = parse_plate(raw) {
            match parse_plate(&p.display) {
                Ok(again) if again.text == p.text => {}
                Ok(again) => {
                    return Err(format!(
                        "{raw:?} reads {:?}, shown {:?}, which reads {:?}",
                        p.text, p.display, again.text
                    ))
                }
                Err(e) => {
                    return Err(format!(
                        "{raw:?} reads {:?}, shown {:?}, which does not parse: {e}",
                        p.text, p.display
                    ))
                }
            }
        }
    }
    let index = PlateIndex::new(&plates);
    let mut queries = Vec::new();
    if let Ok(pattern) = PlatePattern::parse(query) {
        queries.push(PlateQuery::Wildcard(pattern));
    }
    if let Ok(plate) = normalize_plate(query) {
        for max_distance in [0.5, 1.0, 2.0] {
            queries.push(PlateQuery::Fuzzy {
                plate: plate.clone(),
                max_distance,
            });
        }
    }
    for q in queries {
        let mut from_index = index.matching(&q);
        let mut from_scan = PlateIndex::scan(plates.iter().map(String::as_str), &q);
        from_index.sort();
        from_index.dedup();
        from_scan.sort();
        from_scan.dedup();
        if from_index != from_scan {
            return Err(format!(
                "{q:?} over {plates:?}: the index found {from_index:?}, a scan {from_scan:?}"
            ));
        }
    }
    Ok(())
}

fn spool_config(dir: &Path) -> SpoolConfig {
    SpoolConfig {
        dir: dir.to_path_buf(),
        max_bytes: 1 << 20,
        segment_bytes: 64 << 10,
    }
}

/// A scratch folder, in memory where the system has one (the spool syncs
/// every write).
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().unwrap()
}

/// A spool holding the three records, one of them acknowledged; its
/// files by name (made once).
fn spool_files() -> &'static [(String, Vec<u8>)] {
    static FILES: std::sync::OnceLock<Vec<(String, Vec<u8>)>> = std::sync::OnceLock::new();
    FILES.get_or_init(make_spool_files)
}

fn make_spool_files() -> Vec<(String, Vec<u8>)> {
    let dir = scratch();
    let mut spool = Spool::open(spool_config(dir.path())).unwrap();
    let mut ids = Vec::new();
    for (i, r) in SPOOL_RECORDS.iter().enumerate() {
        let priority = if i == 2 {
            Priority::Alarm
        } else {
            Priority::Normal
        };
        ids.push(spool.append(priority, r).unwrap());
    }
    spool.ack(&ids[..1]).unwrap();
    drop(spool);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn spool_seeds() -> Vec<Vec<u8>> {
    spool_files()
        .iter()
        .enumerate()
        .map(|(i, (_, bytes))| [&[i as u8][..], bytes].concat())
        .collect()
}

fn spool(input: &[u8]) -> Result<(), String> {
    let Some((&which, bytes)) = input.split_first() else {
        return Ok(());
    };
    let dir = scratch();
    let files = spool_files();
    let chosen = which as usize % files.len();
    for (i, (name, content)) in files.iter().enumerate() {
        let content = if i == chosen { bytes } else { content };
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    let Ok(mut spool) = Spool::open(spool_config(dir.path())) else {
        // Refusing to open names the file; nothing made up was returned.
        return Ok(());
    };
    let written = |p: &[u8]| SPOOL_RECORDS.contains(&p) || p == NEW_RECORD;
    for r in spool.peek(100, 1 << 20) {
        if !written(&r.payload) {
            return Err(format!(
                "recovered a record nobody wrote: {:?}",
                String::from_utf8_lossy(&r.payload)
            ));
        }
    }
    let id = spool
        .append(Priority::Alarm, NEW_RECORD)
        .map_err(|e| format!("the recovered spool refused a new record: {e}"))?;
    let back = spool.peek(100, 1 << 20);
    if !back.iter().any(|r| r.id == id && r.payload == NEW_RECORD) {
        return Err("the recovered spool lost the record appended after recovery".into());
    }
    Ok(())
}

fn with_file(input: &[u8], f: impl FnOnce(&Path)) -> Result<(), String> {
    let dir = scratch();
    let path = dir.path().join("fuzzed.toml");
    std::fs::write(&path, input).unwrap();
    f(&path);
    Ok(())
}
