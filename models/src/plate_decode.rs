//! Plate-reader outputs to ranked plate texts.
//!
//! Two output kinds are read: CTC (`[T, K]`, class 0 or `blank` is the CTC
//! blank) with greedy or prefix beam search, and fixed slots (`[S, K]`, one
//! character or the pad symbol per slot, as fast-plate-ocr models emit).
//! Candidates then pass the Kazakhstan grammar prior: a text that parses as a
//! Kazakhstan format with a valid region ranks above one that does not.

use std::collections::HashMap;

use safecity_core::{parse_plate, PlateFormat};

/// A plate text with its confidence (0..1) and grammar.
#[derive(Debug, Clone, PartialEq)]
pub struct PlateCandidate {
    /// Canonical text.
    pub text: String,
    pub display: String,
    pub format: PlateFormat,
    pub region: Option<String>,
    /// Probability of the text under the (calibrated) model. The grammar
    /// prior orders the candidates but leaves this as it is, so a sure read
    /// of a foreign plate stays sure.
    pub confidence: f32,
}

/// How much a text that is not a Kazakhstan plate is discounted when
/// candidates are ordered. Foreign plates still win when the model is sure
/// of them.
pub const FOREIGN_PRIOR: f32 = 0.5;

fn softmax_in_place(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::MIN, f32::max);
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// Per-step probabilities from raw scores (`logits`) or as given.
pub(crate) fn probabilities(data: &[f32], classes: usize, logits: bool) -> Vec<f32> {
    tempered_probabilities(data, classes, logits, 1.0)
}

/// Per-step probabilities from raw scores divided by `temperature` (the
/// reader's calibration), or as given when the outputs are not logits.
pub(crate) fn tempered_probabilities(
    data: &[f32],
    classes: usize,
    logits: bool,
    temperature: f32,
) -> Vec<f32> {
    let mut p = data.to_vec();
    if logits {
        if temperature != 1.0 {
            p.iter_mut().for_each(|v| *v /= temperature);
        }
        p.chunks_exact_mut(classes).for_each(softmax_in_place);
    }
    p
}

/// CTC greedy decoding: best class per step, repeats merged, blanks dropped.
/// Returns the text and its probability along the best path.
pub fn ctc_greedy(
    data: &[f32],
    classes: usize,
    alphabet: &[char],
    blank: usize,
    logits: bool,
) -> (String, f32) {
    let p = probabilities(data, classes, logits);
    let mut text = String::new();
    let mut prob = 1.0f32;
    let mut prev = usize::MAX;
    for step in p.chunks_exact(classes) {
        let (best, pb) =
            step.iter()
                .enumerate()
                .fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
        prob *= pb;
        if best != blank && best != prev {
            if let Some(&c) = alphabet.get(class_to_char(best, blank)) {
                text.push(c);
            }
        }
        prev = best;
    }
    (text, prob)
}

/// The alphabet index of a class, skipping the blank.
fn class_to_char(class: usize, blank: usize) -> usize {
    if class > blank {
        class - 1
    } else {
        class
    }
}

/// CTC prefix beam search: the `top_k` most probable texts, each summed over
/// all the paths that spell it.
pub fn ctc_beam(
    data: &[f32],
    classes: usize,
    alphabet: &[char],
    blank: usize,
    logits: bool,
    beam_width: usize,
    top_k: usize,
) -> Vec<(String, f32)> {
    let p = probabilities(data, classes, logits);
    // prefix -> (probability ending in blank, ending in non-blank)
    let mut beams: HashMap<Vec<usize>, (f32, f32)> = HashMap::from([(Vec::new(), (1.0, 0.0))]);
    for step in p.chunks_exact(classes) {
        let mut next: HashMap<Vec<usize>, (f32, f32)> = HashMap::with_capacity(beams.len() * 4);
        // Characters too unlikely at this step cannot change the top beams.
        let floor = 1e-4;
        for (prefix, &(pb, pnb)) in &beams {
            let total = pb + pnb;
            let e = next.entry(prefix.clone()).or_insert((0.0, 0.0));
            e.0 += total * step[blank];
            for (c, &pc) in step.iter().enumerate() {
                if c == blank || pc < floor {
                    continue;
                }
                let last = prefix.last().copied();
                if last == Some(c) {
                    // Repeating the last character without a blank between
                    // keeps the prefix; after a blank it extends it.
                    next.entry(prefix.clone()).or_insert((0.0, 0.0)).1 += pnb * pc;
                    let mut extended = prefix.clone();
                    extended.push(c);
                    next.entry(extended).or_insert((0.0, 0.0)).1 += pb * pc;
                } else {
                    let mut extended = prefix.clone();
                    extended.push(c);
                    next.entry(extended).or_insert((0.0, 0.0)).1 += total * pc;
                }
            }
        }
        let mut ranked: Vec<_> = next.into_iter().collect();
        ranked.sort_by(|a, b| (b.1 .0 + b.1 .1).total_cmp(&(a.1 .0 + a.1 .1)));
        ranked.truncate(beam_width.max(1));
        beams = ranked.into_iter().collect();
    }
    let mut out: Vec<(String, f32)> = beams
        .into_iter()
        .map(|(prefix, (pb, pnb))| {
            let text = prefix
                .iter()
                .filter_map(|&c| alphabet.get(class_to_char(c, blank)))
                .collect();
            (text, pb + pnb)
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out.truncate(top_k);
    out
}

/// Fixed-slot decoding: the best symbol per slot, pad symbols dropped.
/// `alphabet` includes the pad symbol at `pad`. Returns the text and the
/// product of the slot probabilities.
pub fn fixed_slots(
    data: &[f32],
    classes: usize,
    alphabet: &[char],
    pad: usize,
    logits: bool,
) -> (String, f32) {
    let p = probabilities(data, classes, logits);
    let mut text = String::new();
    let mut prob = 1.0;
    for slot in p.chunks_exact(classes) {
        let (best, pb) =
            slot.iter()
                .enumerate()
                .fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
        prob *= pb;
        if best != pad {
            if let Some(&c) = alphabet.get(best) {
                text.push(c);
            }
        }
    }
    (text, prob)
}

/// The `k` most probable fixed-slot texts: the best symbol in every slot,
/// and the runners-up where the model was least sure. Slots are independent,
/// so a text's probability is the product over its slots.
pub fn fixed_slots_k_best(
    data: &[f32],
    classes: usize,
    alphabet: &[char],
    pad: usize,
    logits: bool,
    k: usize,
) -> Vec<(String, f32)> {
    let p = probabilities(data, classes, logits);
    let slots: Vec<&[f32]> = p.chunks_exact(classes).collect();
    // Per slot, the two best symbols.
    let top2: Vec<[(usize, f32); 2]> = slots
        .iter()
        .map(|s| {
            let mut best = [(0, f32::MIN), (0, f32::MIN)];
            for (i, &v) in s.iter().enumerate() {
                if v > best[0].1 {
                    best = [(i, v), best[0]];
                } else if v > best[1].1 {
                    best[1] = (i, v);
                }
            }
            best
        })
        .collect();
    let spell = |choice: &[usize]| -> (String, f32) {
        let mut text = String::new();
        let mut prob = 1.0;
        for (slot, &c) in top2.iter().zip(choice) {
            let (sym, pv) = slot[c];
            prob *= pv;
            if sym != pad {
                if let Some(&ch) = alphabet.get(sym) {
                    text.push(ch);
                }
            }
        }
        (text, prob)
    };
    let mut out = vec![spell(&vec![0; top2.len()])];
    // Single and double swaps to runners-up, most likely first.
    let mut order: Vec<usize> = (0..top2.len()).collect();
    order.sort_by(|&a, &b| (top2[b][1].1 / top2[b][0].1).total_cmp(&(top2[a][1].1 / top2[a][0].1)));
    let unsure = &order[..order.len().min(4)];
    for (n, &a) in unsure.iter().enumerate() {
        let mut choice = vec![0; top2.len()];
        choice[a] = 1;
        out.push(spell(&choice));
        for &b in &unsure[n + 1..] {
            let mut both = choice.clone();
            both[b] = 1;
            out.push(spell(&both));
        }
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out.dedup_by(|a, b| a.0 == b.0);
    out.truncate(k);
    out
}

/// The mean of several views' probabilities, element by element (fixed
/// slots: slot `n` of one view is slot `n` of another).
pub fn mean_probabilities(views: &[&[f32]]) -> Vec<f32> {
    let mut mean = vec![0.0; views.first().map_or(0, |v| v.len())];
    for view in views {
        for (m, v) in mean.iter_mut().zip(view.iter()) {
            *m += v / views.len() as f32;
        }
    }
    mean
}

/// Several views' candidate lists as one, best first: each text's mean
/// probability over the views, 0 where a view did not list it.
pub fn mean_candidates(
    views: impl ExactSizeIterator<Item = Vec<(String, f32)>>,
) -> Vec<(String, f32)> {
    let n = views.len().max(1) as f32;
    let mut merged: Vec<(String, f32)> = Vec::new();
    for (text, prob) in views.flatten() {
        match merged.iter_mut().find(|(t, _)| *t == text) {
            Some(m) => m.1 += prob / n,
            None => merged.push((text, prob / n)),
        }
    }
    merged.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    merged
}

/// Applies the Kazakhstan grammar prior to raw `(text, probability)` pairs
/// and returns them best first, without texts that are not plates.
pub fn rank_candidates(raw: &[(String, f32)], top_k: usize) -> Vec<PlateCandidate> {
    // Each candidate with its ordering score: probability times prior.
    let mut out: Vec<(PlateCandidate, f32)> = Vec::new();
    for (text, prob) in raw {
        let Ok(parsed) = parse_plate(text) else {
            continue;
        };
        if parsed.text.len() < 4 {
            continue;
        }
        let prior = if parsed.format.is_kazakh() {
            1.0
        } else {
            FOREIGN_PRIOR
        };
        let confidence = prob.clamp(0.0, 1.0);
        match out.iter_mut().find(|(c, _)| c.text == parsed.text) {
            Some((c, score)) => {
                c.confidence = c.confidence.max(confidence);
                *score = score.max(confidence * prior);
            }
            None => out.push((
                PlateCandidate {
                    text: parsed.text,
                    display: parsed.display,
                    format: parsed.format,
                    region: parsed.region,
                    confidence,
                },
                confidence * prior,
            )),
        }
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.text.cmp(&b.0.text)));
    out.truncate(top_k);
    out.into_iter().map(|(c, _)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALPHABET: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

    fn alphabet() -> Vec<char> {
        ALPHABET.chars().collect()
    }

    /// One-hot-ish probability rows for a CTC model with blank 0.
    fn ctc_rows(path: &[Option<char>], sure: f32) -> Vec<f32> {
        let k = ALPHABET.len() + 1;
        let mut data = Vec::new();
        for step in path {
            let class = match step {
                None => 0,
                Some(c) => ALPHABET.find(*c).unwrap() + 1,
            };
            let mut row = vec![(1.0 - sure) / (k - 1) as f32; k];
            row[class] = sure;
            data.extend(row);
        }
        data
    }

    #[test]
    fn greedy_merges_repeats_and_drops_blanks() {
        let path = [
            Some('1'),
            Some('1'),
            None,
            Some('1'),
            Some('2'),
            None,
            None,
            Some('A'),
        ];
        let data = ctc_rows(&path, 0.9);
        let (text, p) = ctc_greedy(&data, ALPHABET.len() + 1, &alphabet(), 0, false);
        assert_eq!(text, "112A");
        assert!((p - 0.9f32.powi(8)).abs() < 1e-6);
    }

    #[test]
    fn greedy_accepts_logits() {
        let k = ALPHABET.len() + 1;
        let mut data = vec![0.0; 2 * k];
        data[1 + 7] = 10.0; // '7'
        data[k] = 10.0; // blank
        let (text, p) = ctc_greedy(&data, k, &alphabet(), 0, true);
        assert_eq!(text, "7");
        assert!(p > 0.99);
    }

    #[test]
    fn beam_search_sums_paths_and_finds_what_greedy_misses() {
        // Two steps over {blank, A}: greedy picks blank,blank (0.6*0.6=0.36)
        // but "A" has 0.4*0.6 + 0.6*0.4 + 0.4*0.4 = 0.64.
        let data = [0.6, 0.4, 0.6, 0.4];
        let (greedy, _) = ctc_greedy(&data, 2, &['A'], 0, false);
        assert_eq!(greedy, "");
        let beams = ctc_beam(&data, 2, &['A'], 0, false, 8, 2);
        assert_eq!(beams[0].0, "A");
        assert!((beams[0].1 - 0.64).abs() < 1e-6);
        assert_eq!(beams[1].0, "");
    }

    #[test]
    fn beam_search_agrees_with_greedy_on_a_confident_path() {
        let path: Vec<Option<char>> = "123ABC02".chars().flat_map(|c| [Some(c), None]).collect();
        let data = ctc_rows(&path, 0.95);
        let beams = ctc_beam(&data, ALPHABET.len() + 1, &alphabet(), 0, false, 10, 3);
        assert_eq!(beams[0].0, "123ABC02");
        assert!(beams[0].1 > beams[1].1);
    }

    #[test]
    fn fixed_slots_drop_the_pad_symbol() {
        let mut alphabet = alphabet();
        alphabet.push('_');
        let k = alphabet.len();
        let mut data = Vec::new();
        for c in "715KXM02__".chars() {
            let mut row = vec![0.0; k];
            row[alphabet.iter().position(|&a| a == c).unwrap()] = 1.0;
            data.extend(row);
        }
        let (text, p) = fixed_slots(&data, k, &alphabet, k - 1, false);
        assert_eq!(text, "715KXM02");
        assert_eq!(p, 1.0);
    }

    #[test]
    fn k_best_slots_offer_the_runner_up_where_the_model_was_unsure() {
        // Three slots over {A, B, _}: sure A, unsure A/B, sure pad.
        let data = [0.9, 0.05, 0.05, 0.55, 0.45, 0.0, 0.0, 0.0, 1.0];
        let best = fixed_slots_k_best(&data, 3, &['A', 'B', '_'], 2, false, 3);
        assert_eq!(best[0].0, "AA");
        assert_eq!(best[1].0, "AB");
        assert!((best[0].1 - 0.9 * 0.55).abs() < 1e-6);
        assert!((best[1].1 - 0.9 * 0.45).abs() < 1e-6);
        assert!(best[1].1 > best[2].1);
    }

    #[test]
    fn views_that_disagree_average_to_the_plate_both_half_see() {
        // Two slots over {A, B, _}. One view is sure of "AB" but loses the
        // second slot to the pad; the other is unsure of the first slot.
        let tight = [0.9, 0.1, 0.0, 0.0, 0.45, 0.55];
        let loose = [0.45, 0.5, 0.05, 0.0, 0.95, 0.05];
        let alphabet = ['A', 'B', '_'];
        assert_eq!(fixed_slots(&tight, 3, &alphabet, 2, false).0, "A");
        assert_eq!(fixed_slots(&loose, 3, &alphabet, 2, false).0, "BB");
        let mean = mean_probabilities(&[&tight, &loose]);
        assert!((mean[0] - 0.675).abs() < 1e-6 && (mean[4] - 0.7).abs() < 1e-6);
        let best = fixed_slots_k_best(&mean, 3, &alphabet, 2, false, 2);
        assert_eq!(best[0].0, "AB");
        assert!((best[0].1 - 0.675 * 0.7).abs() < 1e-6);

        // CTC views: lists merge by mean probability, 0 where unlisted.
        let merged = mean_candidates(
            vec![
                vec![("123ABC01".to_owned(), 0.6), ("123ABC07".to_owned(), 0.3)],
                vec![("123ABC07".to_owned(), 0.5)],
            ]
            .into_iter(),
        );
        assert_eq!(merged[0].0, "123ABC07");
        assert!((merged[0].1 - 0.4).abs() < 1e-6 && (merged[1].1 - 0.3).abs() < 1e-6);
    }

    #[test]
    fn the_grammar_prior_prefers_a_valid_kazakh_plate() {
        // The model slightly prefers a region code that does not exist.
        let raw = vec![("123ABC99".to_owned(), 0.5), ("123ABC09".to_owned(), 0.4)];
        let ranked = rank_candidates(&raw, 5);
        assert_eq!(ranked[0].text, "123ABC09");
        assert_eq!(ranked[0].display, "123 ABC 09");
        assert_eq!(ranked[0].region.as_deref(), Some("09"));
        assert_eq!(ranked[1].format, PlateFormat::Foreign);
        // Ranked below, but its confidence is the model's own.
        assert!((ranked[1].confidence - 0.5).abs() < 1e-6);
        assert!((ranked[0].confidence - 0.4).abs() < 1e-6);
        // A confident foreign read still stands, as sure as the model is.
        let ranked = rank_candidates(&[("A123BC77".to_owned(), 0.95)], 5);
        assert_eq!(ranked[0].format, PlateFormat::Foreign);
        assert!((ranked[0].confidence - 0.95).abs() < 1e-6);
        assert!(rank_candidates(&[("12".to_owned(), 0.9)], 5).is_empty());
    }
}
