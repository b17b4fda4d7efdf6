//! Pure metrics on boxes, scores, texts and confidences, shared by the
//! jobs: one-to-one box matching, VOC average precision, edit distance and
//! character accuracy, plate keys for comparing texts, and calibration
//! (a reliability table of equal-width confidence bins and the expected
//! calibration error). Each is tested at the end of this file.

use safecity_core::normalize_plate;
use safecity_models::iou;

/// A detection: score and box `x1, y1, x2, y2`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredBox {
    pub score: f32,
    pub bbox: [f32; 4],
}

/// A ground-truth box `x1, y1, x2, y2`; an `ignore` box is a region where a
/// detection counts neither as right nor as wrong.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TruthBox {
    pub bbox: [f32; 4],
    pub ignore: bool,
}

/// `[x, y, w, h]` to `[x1, y1, x2, y2]`.
pub fn xyxy(b: [f32; 4]) -> [f32; 4] {
    [b[0], b[1], b[0] + b[2], b[1] + b[3]]
}

/// Indices of `dets` by descending score (ties keep their order).
fn by_score(dets: &[ScoredBox]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..dets.len()).collect();
    order.sort_by(|&a, &b| dets[b].score.total_cmp(&dets[a].score));
    order
}

/// One-to-one greedy matching: detections, best score first, each take the
/// not yet matched ground-truth box they overlap most, when that overlap is
/// at least `min_iou`. Returns, for each ground-truth box, the index of the
/// detection matched to it.
pub fn greedy_match(dets: &[ScoredBox], truth: &[[f32; 4]], min_iou: f32) -> Vec<Option<usize>> {
    let mut matched: Vec<Option<usize>> = vec![None; truth.len()];
    for d in by_score(dets) {
        let best = truth
            .iter()
            .enumerate()
            .filter(|(j, _)| matched[*j].is_none())
            .map(|(j, t)| (j, iou(dets[d].bbox, *t)))
            .filter(|&(_, o)| o >= min_iou)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((j, _)) = best {
            matched[j] = Some(d);
        }
    }
    matched
}

/// VOC all-points average precision of detections ranked by score, each
/// marked true or false positive, against `positives` ground-truth boxes.
/// `None` when there is nothing to find.
pub fn voc_ap(scored: &[(f32, bool)], positives: usize) -> Option<f64> {
    if positives == 0 {
        return None;
    }
    let mut ranked = scored.to_vec();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut fp) = (0usize, 0usize);
    // Recall and precision after each detection, with the sentinels of the
    // VOC devkit: recall 0 and 1 at the ends, precision 0.
    let mut recall = vec![0.0];
    let mut precision = vec![0.0];
    for &(_, hit) in &ranked {
        if hit {
            tp += 1;
        } else {
            fp += 1;
        }
        recall.push(tp as f64 / positives as f64);
        precision.push(tp as f64 / (tp + fp) as f64);
    }
    recall.push(1.0);
    precision.push(0.0);
    // The precision envelope: the best precision at this recall or beyond.
    for i in (0..precision.len() - 1).rev() {
        precision[i] = precision[i].max(precision[i + 1]);
    }
    Some(
        (1..recall.len())
            .filter(|&i| recall[i] != recall[i - 1])
            .map(|i| (recall[i] - recall[i - 1]) * precision[i])
            .sum(),
    )
}

/// Detections of one class over many pictures, marked VOC-style, for AP and
/// for precision and recall at a threshold.
#[derive(Debug, Clone, Default)]
pub struct ApTally {
    /// Score and whether it was a true positive, for every detection that
    /// was not in an ignore region.
    scored: Vec<(f32, bool)>,
    /// Ground-truth boxes to find.
    pub positives: usize,
    /// Ground-truth ignore regions.
    pub ignored: usize,
}

impl ApTally {
    /// Marks one picture's detections: best score first, each goes to the
    /// ground-truth box it overlaps most. At `min_iou` or more it is a true
    /// positive for a box not yet found, a false positive for a box already
    /// found, and nothing for an ignore region; below, a false positive.
    pub fn add(&mut self, dets: &[ScoredBox], truth: &[TruthBox], min_iou: f32) {
        self.positives += truth.iter().filter(|t| !t.ignore).count();
        self.ignored += truth.iter().filter(|t| t.ignore).count();
        let mut found = vec![false; truth.len()];
        for d in by_score(dets) {
            let best = truth
                .iter()
                .enumerate()
                .map(|(j, t)| (j, iou(dets[d].bbox, t.bbox)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let hit = match best {
                Some((j, o)) if o >= min_iou => {
                    if truth[j].ignore {
                        continue;
                    }
                    !std::mem::replace(&mut found[j], true)
                }
                _ => false,
            };
            self.scored.push((dets[d].score, hit));
        }
    }

    /// VOC all-points AP; `None` without ground truth.
    pub fn ap(&self) -> Option<f64> {
        voc_ap(&self.scored, self.positives)
    }

    /// Precision and recall of the detections scoring `threshold` or more.
    pub fn precision_recall(&self, threshold: f32) -> (Option<f64>, Option<f64>) {
        let kept = self.scored.iter().filter(|s| s.0 >= threshold);
        let (n, tp) = kept.fold((0, 0), |(n, tp), s| (n + 1, tp + usize::from(s.1)));
        (rate(tp, n), rate(tp, self.positives))
    }
}

/// Edit distance in characters (insertions, deletions, substitutions).
pub fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// `1 - distance / longer length`: 1 for the same text, 0 for nothing in
/// common.
pub fn char_accuracy(predicted: &str, truth: &str) -> f64 {
    let longest = predicted.chars().count().max(truth.chars().count());
    if longest == 0 {
        return 1.0;
    }
    1.0 - levenshtein(predicted, truth) as f64 / longest as f64
}

/// `hits / n`, `None` for `n == 0`.
pub fn rate(hits: usize, n: usize) -> Option<f64> {
    (n > 0).then(|| hits as f64 / n as f64)
}

/// Plate text for comparison: canonical when it parses as a plate, else
/// its letters and digits in upper case.
pub fn plate_key(text: &str) -> String {
    normalize_plate(text).unwrap_or_else(|_| {
        text.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect()
    })
}

/// The median of `values` (0 for none).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Equal-width confidence bins of a reliability table.
pub const CALIBRATION_BINS: usize = 10;

/// The reads whose confidence fell in one bin of a reliability table.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReliabilityBin {
    pub count: usize,
    /// Sum of the confidences, for their mean.
    pub confidence_sum: f64,
    /// Reads whose text was right.
    pub right: usize,
}

impl ReliabilityBin {
    /// Mean confidence; `None` for an empty bin.
    pub fn mean_confidence(&self) -> Option<f64> {
        (self.count > 0).then(|| self.confidence_sum / self.count as f64)
    }

    /// Share of right reads; `None` for an empty bin.
    pub fn accuracy(&self) -> Option<f64> {
        rate(self.right, self.count)
    }
}

/// The bin of a confidence in 0..1: `[k/10, (k+1)/10)`, with 1 in the
/// last bin.
fn confidence_bin(confidence: f32) -> usize {
    let bins = CALIBRATION_BINS as f32;
    ((confidence * bins).floor() as usize).min(CALIBRATION_BINS - 1)
}

/// Reads, each its confidence and whether its text was right, sorted into
/// [`CALIBRATION_BINS`] equal-width confidence bins. Confidences outside
/// 0..1 are clamped.
pub fn reliability(reads: &[(f32, bool)]) -> [ReliabilityBin; CALIBRATION_BINS] {
    let mut bins = [ReliabilityBin::default(); CALIBRATION_BINS];
    for &(confidence, right) in reads {
        let confidence = confidence.clamp(0.0, 1.0);
        let bin = &mut bins[confidence_bin(confidence)];
        bin.count += 1;
        bin.confidence_sum += f64::from(confidence);
        bin.right += usize::from(right);
    }
    bins
}

/// Expected calibration error: over the bins, the share of reads in the
/// bin times the gap between its accuracy and its mean confidence. 0 when
/// every bin is right as often as it is sure; `None` without reads.
pub fn expected_calibration_error(bins: &[ReliabilityBin]) -> Option<f64> {
    let total: usize = bins.iter().map(|b| b.count).sum();
    (total > 0).then(|| {
        bins.iter()
            .filter_map(|b| Some(b.count as f64 * (b.accuracy()? - b.mean_confidence()?).abs()))
            .sum::<f64>()
            / total as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(score: f32, bbox: [f32; 4]) -> ScoredBox {
        ScoredBox { score, bbox }
    }

    fn truth(bbox: [f32; 4]) -> TruthBox {
        TruthBox {
            bbox,
            ignore: false,
        }
    }

    const A: [f32; 4] = [0.0, 0.0, 10.0, 10.0];
    const B: [f32; 4] = [100.0, 100.0, 120.0, 110.0];
    const FAR: [f32; 4] = [300.0, 300.0, 310.0, 310.0];

    #[test]
    fn a_perfect_detector_has_ap_one() {
        let mut t = ApTally::default();
        t.add(&[det(0.9, A), det(0.8, B)], &[truth(A), truth(B)], 0.5);
        t.add(&[det(0.3, A)], &[truth(A)], 0.5);
        assert_eq!(t.positives, 3);
        assert!((t.ap().unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(t.precision_recall(0.5), (Some(1.0), Some(2.0 / 3.0)));
    }

    #[test]
    fn a_false_positive_ranked_first_halves_ap() {
        let mut t = ApTally::default();
        t.add(&[det(0.9, FAR), det(0.5, A)], &[truth(A)], 0.5);
        assert!((t.ap().unwrap() - 0.5).abs() < 1e-12);
        // Ranked after the hit, it costs nothing.
        let mut t = ApTally::default();
        t.add(&[det(0.9, A), det(0.5, FAR)], &[truth(A)], 0.5);
        assert!((t.ap().unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn missed_boxes_and_duplicates_lower_ap() {
        let mut t = ApTally::default();
        t.add(&[det(0.9, A)], &[truth(A), truth(B)], 0.5);
        assert!((t.ap().unwrap() - 0.5).abs() < 1e-12);
        // A second detection of the same box is a false positive.
        let mut t = ApTally::default();
        t.add(
            &[det(0.9, A), det(0.8, A), det(0.7, B)],
            &[truth(A), truth(B)],
            0.5,
        );
        // Precision 1 up to recall 0.5, then 2/3 at recall 1.
        assert!((t.ap().unwrap() - (0.5 + 0.5 * 2.0 / 3.0)).abs() < 1e-12);
        assert!(voc_ap(&[(0.9, false)], 0).is_none());
        assert_eq!(ApTally::default().ap(), None);
    }

    #[test]
    fn ignore_regions_are_neither_hit_nor_false_alarm() {
        let mut t = ApTally::default();
        let gts = [
            truth(A),
            TruthBox {
                bbox: B,
                ignore: true,
            },
        ];
        t.add(&[det(0.95, B), det(0.9, A)], &gts, 0.5);
        assert_eq!((t.positives, t.ignored), (1, 1));
        assert_eq!(t.scored.len(), 1);
        assert!((t.ap().unwrap() - 1.0).abs() < 1e-12);
        // Only ignore regions: nothing to find, no AP.
        let mut t = ApTally::default();
        t.add(&[det(0.9, B)], &gts[1..], 0.5);
        assert_eq!(t.ap(), None);
    }

    #[test]
    fn matching_needs_half_overlap_and_is_one_to_one() {
        // [0,0,10,10] against [5,0,15,10]: IoU 1/3.
        let shifted = [5.0, 0.0, 15.0, 10.0];
        assert_eq!(greedy_match(&[det(0.9, shifted)], &[A], 0.5), vec![None]);
        // [0,0,10,10] against [0,0,10,8]: IoU 0.8.
        let close = [0.0, 0.0, 10.0, 8.0];
        assert_eq!(greedy_match(&[det(0.9, close)], &[A], 0.5), vec![Some(0)]);
        // Two detections of one box: the better scored one takes it.
        assert_eq!(
            greedy_match(&[det(0.4, A), det(0.9, close)], &[A], 0.5),
            vec![Some(1)]
        );
        // One detection finds one box at most.
        assert_eq!(
            greedy_match(&[det(0.9, A)], &[A, close], 0.5),
            vec![Some(0), None]
        );
        assert_eq!(greedy_match(&[], &[A], 0.5), vec![None]);
    }

    #[test]
    fn below_half_overlap_is_a_false_positive() {
        let mut t = ApTally::default();
        t.add(&[det(0.9, [5.0, 0.0, 15.0, 10.0])], &[truth(A)], 0.5);
        assert_eq!(t.ap(), Some(0.0));
        assert_eq!(t.precision_recall(0.0), (Some(0.0), Some(0.0)));
    }

    #[test]
    fn edit_distance_and_char_accuracy() {
        assert_eq!(levenshtein("", ""), 0);
        assert_eq!(levenshtein("ABC", ""), 3);
        assert_eq!(levenshtein("123ABC02", "123ABC02"), 0);
        assert_eq!(levenshtein("123ABC02", "123A8C02"), 1);
        assert_eq!(levenshtein("123ABC02", "23ABC02"), 1);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(char_accuracy("123ABC02", "123ABC02"), 1.0);
        assert_eq!(char_accuracy("", "1234"), 0.0);
        assert_eq!(char_accuracy("", ""), 1.0);
        assert!((char_accuracy("123A8C02", "123ABC02") - 7.0 / 8.0).abs() < 1e-12);
    }

    #[test]
    fn plate_keys_compare_texts_as_plates() {
        assert_eq!(plate_key("abc-123"), "ABC123");
        assert_eq!(plate_key("АВС 123"), "ABC123");
        assert_eq!(plate_key("AD 054 JI"), "AD054JI");
        assert_eq!(plate_key(""), "");
    }

    #[test]
    fn helpers() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        assert_eq!(rate(1, 4), Some(0.25));
        assert_eq!(rate(0, 0), None);
        assert_eq!(xyxy([1.0, 2.0, 3.0, 4.0]), [1.0, 2.0, 4.0, 6.0]);
    }

    #[test]
    fn confidences_fall_in_equal_width_bins() {
        // A bin holds its lower edge; 1 and anything above go to the last.
        let bins = reliability(&[
            (0.0, false),
            (0.1, true),
            (0.3, true),
            (0.7, false),
            (0.99, true),
            (1.0, true),
            (1.5, false),
            (-0.2, false),
        ]);
        let counts: Vec<usize> = bins.iter().map(|b| b.count).collect();
        assert_eq!(counts, [2, 1, 0, 1, 0, 0, 0, 1, 0, 3]);
        assert_eq!(bins[9].right, 2);
        assert_eq!(bins[9].accuracy(), Some(2.0 / 3.0));
        assert!((bins[9].mean_confidence().unwrap() - (0.99 + 1.0 + 1.0) / 3.0).abs() < 1e-6);
        assert_eq!(bins[2].accuracy(), None);
        assert_eq!(bins[2].mean_confidence(), None);
    }

    #[test]
    fn calibration_error_weighs_each_bin_by_its_reads() {
        // Four reads at 0.95, three right: a gap of 0.2 over 4 of 6 reads.
        // Two reads at 0.25, both wrong: a gap of 0.25 over 2 of 6.
        let reads = [
            (0.95, true),
            (0.95, true),
            (0.95, true),
            (0.95, false),
            (0.25, false),
            (0.25, false),
        ];
        let ece = expected_calibration_error(&reliability(&reads)).unwrap();
        assert!((ece - (4.0 * 0.2 + 2.0 * 0.25) / 6.0).abs() < 1e-6, "{ece}");
        // Right as often as sure: no error.
        let calibrated = [(0.75, true), (0.75, true), (0.75, true), (0.75, false)];
        let ece = expected_calibration_error(&reliability(&calibrated)).unwrap();
        assert!(ece.abs() < 1e-9, "{ece}");
        // Sure and always wrong: the whole confidence.
        let ece = expected_calibration_error(&reliability(&[(0.9, false)])).unwrap();
        assert!((ece - 0.9).abs() < 1e-6, "{ece}");
        assert_eq!(expected_calibration_error(&reliability(&[])), None);
    }
}
