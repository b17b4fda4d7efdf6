//! One plate text per vehicle pass: a character-level vote over the reads
//! of a track, weighted by confidence.

use std::collections::HashMap;

/// The reads of one track.
#[derive(Debug, Default, Clone)]
pub struct PlateVote {
    /// `(text, confidence)` of every read offered.
    reads: Vec<(String, f32)>,
}

/// The outcome of a vote.
#[derive(Debug, Clone, PartialEq)]
pub struct VoteResult {
    pub text: String,
    /// 0..1: how strongly the reads agree, times how sure they were.
    pub confidence: f32,
    /// Distinct texts with their summed weight, best first; the voted text
    /// comes first even if no single read spelled it.
    pub candidates: Vec<(String, f32)>,
    pub reads: usize,
}

impl PlateVote {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one frame's best read of this track's plate; returns whether
    /// it counts (an empty or zero-confidence read does not).
    pub fn add(&mut self, text: &str, confidence: f32) -> bool {
        let counts = !text.is_empty() && confidence > 0.0;
        if counts {
            self.reads.push((text.to_owned(), confidence));
        }
        counts
    }

    /// The summed confidence of the reads that spell `text`.
    pub fn weight(&self, text: &str) -> f32 {
        self.reads
            .iter()
            .filter(|(t, _)| t == text)
            .map(|(_, c)| c)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.reads.is_empty()
    }

    /// Takes in the reads of another track of the same vehicle.
    pub fn absorb(&mut self, other: PlateVote) {
        self.reads.extend(other.reads);
    }

    /// The voted text: first the length most weight agrees on, then per
    /// position the character with the most weight among reads of that
    /// length. Reads of other lengths (a missed or extra character) still
    /// count for the length, not for the characters.
    pub fn result(&self, top_k: usize) -> Option<VoteResult> {
        let mut by_len: HashMap<usize, f32> = HashMap::new();
        for (t, c) in &self.reads {
            *by_len.entry(t.len()).or_default() += c;
        }
        let (&len, _) = by_len
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1).then_with(|| b.0.cmp(a.0)))?;
        let same_len: Vec<&(String, f32)> =
            self.reads.iter().filter(|(t, _)| t.len() == len).collect();
        let total: f32 = same_len.iter().map(|(_, c)| c).sum();
        let mut text = String::with_capacity(len);
        let mut agreement = 0.0;
        for pos in 0..len {
            let mut votes: HashMap<u8, f32> = HashMap::new();
            for (t, c) in &same_len {
                *votes.entry(t.as_bytes()[pos]).or_default() += c;
            }
            let (&ch, &w) = votes
                .iter()
                .max_by(|a, b| a.1.total_cmp(b.1).then_with(|| b.0.cmp(a.0)))
                .expect("at least one read");
            text.push(ch as char);
            agreement += w / total;
        }
        let mean_conf = total / same_len.len() as f32;
        let all: f32 = self.reads.iter().map(|(_, c)| c).sum();
        let confidence = (agreement / len as f32) * mean_conf * (total / all);

        let mut weights: HashMap<&str, f32> = HashMap::new();
        for (t, c) in &self.reads {
            *weights.entry(t.as_str()).or_default() += c;
        }
        let mut candidates: Vec<(String, f32)> = weights
            .into_iter()
            .filter(|(t, _)| *t != text)
            .map(|(t, w)| (t.to_owned(), w / all))
            .collect();
        candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        candidates.insert(0, (text.clone(), confidence));
        candidates.truncate(top_k.max(1));
        Some(VoteResult {
            text,
            confidence,
            candidates,
            reads: self.reads.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_are_voted_position_by_position() {
        let mut v = PlateVote::new();
        // No single read is right, but each position has a majority.
        v.add("I23ABC02", 0.8);
        v.add("123A8C02", 0.8);
        v.add("123ABCO2", 0.8);
        let r = v.result(3).unwrap();
        assert_eq!(r.text, "123ABC02");
        assert_eq!(r.reads, 3);
        assert_eq!(r.candidates[0].0, "123ABC02");
        assert_eq!(r.candidates.len(), 3);
        assert!(r.confidence > 0.5 && r.confidence < 0.8, "{}", r.confidence);
    }

    #[test]
    fn confident_reads_outweigh_many_doubtful_ones() {
        let mut v = PlateVote::new();
        v.add("715KXM02", 0.95);
        v.add("715KXM02", 0.9);
        for _ in 0..3 {
            v.add("715KXN02", 0.2);
        }
        assert_eq!(v.result(1).unwrap().text, "715KXM02");
    }

    #[test]
    fn the_length_is_voted_first() {
        let mut v = PlateVote::new();
        v.add("715KXM02", 0.9);
        v.add("715KXM02", 0.8);
        v.add("15KXM02", 0.7);
        let r = v.result(2).unwrap();
        assert_eq!(r.text, "715KXM02");
        assert_eq!(r.candidates[1].0, "15KXM02");
        assert!((v.weight("715KXM02") - 1.7).abs() < 1e-6);
        assert!(!v.add("", 0.9) && !v.add("715KXM02", 0.0));
        assert_eq!(v.weight("999ZZZ99"), 0.0);
        assert!(PlateVote::new().result(1).is_none());
    }
}
