//! Plate queries with `?` and `*` wildcards.

use crate::plate::{PlateError, MAX_PLATE_LEN};

/// A plate query: `?` stands for one character, `*` for any run.
///
/// Letters are normalised as in [`crate::normalize_plate`], so `123 аbc*`
/// and `123ABC*` are the same pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatePattern {
    pattern: String,
}

impl PlatePattern {
    /// Parses a query. Separators are dropped; any character other than a
    /// letter, digit, `?` or `*` is an error naming that character.
    pub fn parse(query: &str) -> Result<Self, PlateError> {
        let mut pattern = String::with_capacity(query.len());
        let mut plain = String::new();
        for ch in query.chars() {
            match ch {
                '?' | '*' => {
                    // Adjacent stars mean the same as one.
                    if !(ch == '*' && pattern.ends_with('*')) {
                        pattern.push(ch);
                    }
                }
                other => {
                    plain.clear();
                    plain.push(other);
                    match crate::normalize_plate(&plain) {
                        Ok(c) => pattern.push_str(&c),
                        Err(PlateError::Empty) => {}
                        Err(PlateError::BadCharacter { ch, .. }) => {
                            return Err(PlateError::BadCharacter {
                                text: query.to_owned(),
                                ch,
                            })
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        if pattern.is_empty() {
            return Err(PlateError::Empty);
        }
        if pattern.len() > MAX_PLATE_LEN + 4 {
            return Err(PlateError::TooLong {
                text: query.to_owned(),
            });
        }
        Ok(Self { pattern })
    }

    /// The normalised pattern text, e.g. `123?BC*`.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether the pattern has no wildcard, so it is an exact plate.
    pub fn is_exact(&self) -> bool {
        !self.pattern.contains(['?', '*'])
    }

    /// The characters before the first wildcard; an index can seek to it.
    pub fn literal_prefix(&self) -> &str {
        let end = self.pattern.find(['?', '*']).unwrap_or(self.pattern.len());
        &self.pattern[..end]
    }

    /// Whether a canonical plate matches the whole pattern.
    pub fn matches(&self, plate: &str) -> bool {
        let (p, t) = (self.pattern.as_bytes(), plate.as_bytes());
        // Greedy match with backtracking to the last star: linear for the
        // patterns people type, never exponential.
        let (mut pi, mut ti) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
                pi += 1;
                ti += 1;
            } else if pi < p.len() && p[pi] == b'*' {
                star = Some((pi, ti));
                pi += 1;
            } else if let Some((sp, st)) = star {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            } else {
                return false;
            }
        }
        p[pi..].iter().all(|&c| c == b'*')
    }
}

impl std::str::FromStr for PlatePattern {
    type Err = PlateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        PlatePattern::parse(p).unwrap().matches(t)
    }

    #[test]
    fn wildcards_match_one_or_any_run() {
        assert!(m("123ABC02", "123ABC02"));
        assert!(!m("123ABC02", "123ABC0"));
        assert!(m("123?BC02", "123XBC02"));
        assert!(!m("123?BC02", "123BC02"));
        assert!(m("*02", "123ABC02"));
        assert!(m("123*", "123ABC02"));
        assert!(m("1*C*2", "123ABC02"));
        assert!(m("*", "A"));
        assert!(!m("*X*", "123ABC02"));
        assert!(m("**ABC**", "123ABC02"));
    }

    #[test]
    fn normalises_like_plates() {
        let p = PlatePattern::parse("123 аbc *").unwrap();
        assert_eq!(p.as_str(), "123ABC*");
        assert_eq!(p.literal_prefix(), "123ABC");
        assert!(!p.is_exact());
        assert!(PlatePattern::parse("123ABC02").unwrap().is_exact());
    }

    #[test]
    fn rejects_bad_patterns() {
        assert_eq!(PlatePattern::parse("  "), Err(PlateError::Empty));
        let err = PlatePattern::parse("12%AB").unwrap_err();
        assert!(err.to_string().contains("'%'"), "{err}");
    }
}
