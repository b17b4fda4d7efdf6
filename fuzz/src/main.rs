//! `safecity-fuzz`: fuzzes each named target (all when none is named) for
//! a bounded time and writes what it finds under `fuzz/regressions/`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use safecity_fuzz::{fuzz, regressions_dir, Target, Verdict};

#[derive(Parser)]
#[command(about = "Time-bounded mutation fuzzing of safecity's input decoders")]
struct Args {
    /// Targets: ingest, search, plate, spool, edge-config, server-config,
    /// model-description (default: all).
    targets: Vec<String>,
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seed of the mutations (runs with one seed repeat).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where findings are written (default: fuzz/regressions, replayed by
    /// this crate's tests).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() {
    let args = Args::parse();
    let targets: Vec<Target> = if args.targets.is_empty() {
        Target::all().to_vec()
    } else {
        args.targets
            .iter()
            .map(|n| {
                Target::by_name(n).unwrap_or_else(|| {
                    let known: Vec<&str> = Target::all().iter().map(|t| t.name()).collect();
                    eprintln!("error: unknown target {n:?}; known: {}", known.join(", "));
                    std::process::exit(2)
                })
            })
            .collect()
    };
    let out = args.out.unwrap_or_else(regressions_dir);
    let mut found = 0;
    for t in targets {
        let r = fuzz(t, Duration::from_secs(args.seconds), args.seed, &out);
        println!(
            "fuzz {}: {} inputs in {:.0} s ({:.0}/s), {} findings",
            t.name(),
            r.executions,
            r.seconds,
            r.executions as f64 / r.seconds.max(1e-9),
            r.findings.len()
        );
        for (path, verdict) in &r.findings {
            let what = match verdict {
                Verdict::Panicked(m) => format!("panicked: {m}"),
                Verdict::Wrong(m) => format!("wrong: {m}"),
                Verdict::Fine => continue,
            };
            println!("  {}: {what}", path.display());
        }
        found += r.findings.len();
    }
    if found > 0 {
        std::process::exit(1);
    }
}
