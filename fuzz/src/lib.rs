//! Time-bounded mutation fuzzing of the places where outside bytes enter
//! safecity: the server's ingest body (gzip and JSON) and search
//! parameters, plates and plate patterns (checked against a plain scan),
//! the edge spool's files after a crash or a bad disk, and the edge, server
//! and model description files.
//!
//! Each [`Target`] starts from seed inputs (real examples: the example
//! configurations, the shipped model descriptions, a spool written by the
//! spool itself), mutates them (bit flips, byte edits, cut, repeated and
//! spliced ranges, tokens of the input's language) and runs the decoder.
//! A panic, or a result that breaks the target's own rule (a batch said
//! accepted with a different event count, an index disagreeing with the
//! scan, a spool returning a record nobody wrote), is a finding: its input
//! is written to `fuzz/regressions/<target>/` and replayed by this crate's
//! tests from then on.
//!
//! This is stable Rust with no coverage feedback (coverage-guided tools
//! need a nightly compiler or an instrumenting toolchain); the seeds and
//! the token lists stand in for it by starting every run from valid input.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod targets;

pub use targets::Target;

/// What one input did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Decoded or refused with an error, as it should.
    Fine,
    /// Broke the target's rule (the message says how).
    Wrong(String),
    /// Panicked (with the panic's message).
    Panicked(String),
}

/// Runs one input through a target, catching panics.
pub fn check(target: Target, input: &[u8]) -> Verdict {
    match catch_unwind(AssertUnwindSafe(|| target.run(input))) {
        Ok(Ok(())) => Verdict::Fine,
        Ok(Err(why)) => Verdict::Wrong(why),
        Err(panic) => Verdict::Panicked(
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "a panic without a message".into()),
        ),
    }
}

/// What a run found.
#[derive(Debug, Default)]
pub struct Report {
    pub executions: u64,
    pub seconds: f64,
    /// Files written for each finding.
    pub findings: Vec<(PathBuf, Verdict)>,
}

/// Fuzzes `target` for `duration`, writing findings under `out`.
pub fn fuzz(target: Target, duration: Duration, seed: u64, out: &Path) -> Report {
    let seeds = target.seeds();
    let tokens = target.tokens();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = Instant::now();
    let mut report = Report::default();
    // Quiet the default hook: a caught panic is reported once, with its input.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    while start.elapsed() < duration {
        let base = &seeds[rng.gen_range(0..seeds.len())];
        let other = &seeds[rng.gen_range(0..seeds.len())];
        let input = mutate(base, other, tokens, &mut rng);
        report.executions += 1;
        let verdict = check(target, &input);
        if verdict != Verdict::Fine && report.findings.len() < 20 {
            let path = save(out, target, &input);
            report.findings.push((path, verdict));
        }
    }
    std::panic::set_hook(hook);
    report.seconds = start.elapsed().as_secs_f64();
    report
}

fn save(out: &Path, target: Target, input: &[u8]) -> PathBuf {
    use sha2::Digest;
    let dir = out.join(target.name());
    let _ = std::fs::create_dir_all(&dir);
    let hash = sha2::Sha256::digest(input);
    let name: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join(name);
    let _ = std::fs::write(&path, input);
    path
}

/// One to four mutations of `base` (sometimes spliced with `other`).
pub fn mutate(base: &[u8], other: &[u8], tokens: &[&[u8]], rng: &mut impl RngCore) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..rng.gen_range(1..=4) {
        let len = v.len();
        match rng.gen_range(0..9) {
            0 if len > 0 => {
                let i = rng.gen_range(0..len);
                v[i] ^= 1 << rng.gen_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.gen_range(0..len);
                v[i] = *[0u8, 0xff, 0x7f, 0x80, b'"', b'\\', b'\n', b'0', b'-']
                    .get(rng.gen_range(0..9))
                    .unwrap_or(&0);
            }
            2 if len > 0 => {
                // Cut a range.
                let a = rng.gen_range(0..len);
                let b = (a + rng.gen_range(1..=16.min(len - a).max(1))).min(len);
                v.drain(a..b);
            }
            3 if len > 0 => {
                // Repeat a range.
                let a = rng.gen_range(0..len);
                let b = (a + rng.gen_range(1..=64)).min(len);
                let chunk = v[a..b].to_vec();
                let at = rng.gen_range(0..=v.len());
                v.splice(at..at, chunk);
            }
            4 if !tokens.is_empty() => {
                let t = tokens[rng.gen_range(0..tokens.len())];
                let at = rng.gen_range(0..=len);
                v.splice(at..at, t.iter().copied());
            }
            5 if !tokens.is_empty() && len > 0 => {
                // Replace a range with a token.
                let t = tokens[rng.gen_range(0..tokens.len())];
                let a = rng.gen_range(0..len);
                let b = (a + rng.gen_range(1..=8)).min(len);
                v.splice(a..b, t.iter().copied());
            }
            6 if !other.is_empty() => {
                // Splice: our head, the other's tail.
                let a = rng.gen_range(0..=len);
                let b = rng.gen_range(0..other.len());
                v.truncate(a);
                v.extend_from_slice(&other[b..]);
            }
            7 if len > 0 => {
                let i = rng.gen_range(0..len);
                v.truncate(i);
            }
            _ => {
                let at = rng.gen_range(0..=len);
                let n = rng.gen_range(1..=8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
                v.splice(at..at, bytes);
            }
        }
    }
    v.truncate(1 << 20);
    v
}

/// The folder of kept findings, replayed by the tests.
pub fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions")
}
