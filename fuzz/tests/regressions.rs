//! Every input a fuzz run once found (`fuzz/regressions/<target>/`) and
//! every seed is run again: each must now decode or be refused cleanly.

use safecity_fuzz::{check, mutate, regressions_dir, Target, Verdict};

#[test]
fn kept_findings_and_seeds_pass() {
    let mut checked = 0;
    for &t in Target::all() {
        let mut inputs = t.seeds();
        assert!(
            inputs.iter().all(|s| !s.is_empty()),
            "{}: a seed file is missing or empty",
            t.name()
        );
        if let Ok(dir) = std::fs::read_dir(regressions_dir().join(t.name())) {
            for e in dir.flatten() {
                inputs.push(std::fs::read(e.path()).unwrap());
            }
        }
        for input in inputs {
            assert_eq!(
                check(t, &input),
                Verdict::Fine,
                "{}: {:?}",
                t.name(),
                String::from_utf8_lossy(&input)
            );
            checked += 1;
        }
    }
    assert!(checked >= Target::all().len());
}

/// A short, fixed run of each target, so that a change breaking a
/// decoder's rule shows in `make test` and not only in `make faults`.
#[test]
fn a_few_hundred_mutations_of_each_seed_pass() {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for &t in Target::all() {
        let seeds = t.seeds();
        for i in 0..300 {
            let input = mutate(
                &seeds[i % seeds.len()],
                &seeds[(i + 1) % seeds.len()],
                t.tokens(),
                &mut rng,
            );
            let v = check(t, &input);
            assert_eq!(
                v,
                Verdict::Fine,
                "{}: {:?}",
                t.name(),
                String::from_utf8_lossy(&input)
            );
        }
    }
}
