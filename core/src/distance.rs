//! Fuzzy plate distance with cheap look-alike swaps.

/// Groups of characters that OCR and people confuse. A substitution inside a
/// group costs [`LOOKALIKE_COST`]; every other edit costs 1.
pub const LOOKALIKE_GROUPS: [&str; 7] = ["0ODQ", "1IL7", "2Z", "5S", "8B", "6G", "4A"];

/// Cost of replacing a character by a look-alike from its group.
pub const LOOKALIKE_COST: f32 = 0.5;

fn substitution_cost(a: u8, b: u8) -> f32 {
    if a == b {
        return 0.0;
    }
    let lookalike = LOOKALIKE_GROUPS
        .iter()
        .any(|g| g.as_bytes().contains(&a) && g.as_bytes().contains(&b));
    if lookalike {
        LOOKALIKE_COST
    } else {
        1.0
    }
}

/// Weighted edit distance between two canonical plates.
///
/// Insertions and deletions cost 1, substitutions 1, and substitutions between
/// look-alikes [`LOOKALIKE_COST`].
///
/// ```
/// use safecity_core::plate_distance;
/// assert_eq!(plate_distance("123ABC02", "123ABC02"), 0.0);
/// assert_eq!(plate_distance("123ABC02", "123A8C02"), 0.5);
/// assert_eq!(plate_distance("123ABC02", "123AXC02"), 1.0);
/// ```
pub fn plate_distance(a: &str, b: &str) -> f32 {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    // One row of the dynamic programme; plates are short, so this stays on the stack.
    let mut row: Vec<f32> = (0..=b.len()).map(|j| j as f32).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = (i + 1) as f32;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            let best = (diagonal + substitution_cost(ca, cb))
                .min(above + 1.0)
                .min(row[j] + 1.0);
            diagonal = above;
            row[j + 1] = best;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alikes_are_cheaper_than_other_edits() {
        assert_eq!(plate_distance("0", "O"), LOOKALIKE_COST);
        assert_eq!(plate_distance("O", "D"), LOOKALIKE_COST);
        assert_eq!(plate_distance("7", "L"), LOOKALIKE_COST);
        assert_eq!(plate_distance("4", "A"), LOOKALIKE_COST);
        assert_eq!(plate_distance("4", "B"), 1.0);
        assert_eq!(plate_distance("123ABC02", "I23A8CO2"), 1.5);
    }

    #[test]
    fn insertions_and_deletions_cost_one() {
        assert_eq!(plate_distance("", "123"), 3.0);
        assert_eq!(plate_distance("123ABC02", "123ABC2"), 1.0);
        assert_eq!(plate_distance("123ABC02", "1234ABC02"), 1.0);
    }

    #[test]
    fn is_symmetric_and_obeys_the_triangle_inequality() {
        let plates = [
            "123ABC02", "I23ABC02", "123A8C02", "12ABC02", "777KXM17", "A123BCD",
        ];
        for a in plates {
            for b in plates {
                assert_eq!(plate_distance(a, b), plate_distance(b, a), "{a} {b}");
                for c in plates {
                    assert!(
                        plate_distance(a, c) <= plate_distance(a, b) + plate_distance(b, c),
                        "{a} {b} {c}"
                    );
                }
            }
        }
    }
}
