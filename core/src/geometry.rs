//! Boxes in pixels, shared by the detector's decoding and the tracker.

/// Intersection over union of two `x1, y1, x2, y2` boxes; 0 when either is
/// empty.
///
/// ```
/// let a = [0.0, 0.0, 10.0, 10.0];
/// assert_eq!(safecity_core::iou(a, a), 1.0);
/// assert_eq!(safecity_core::iou(a, [20.0, 0.0, 30.0, 10.0]), 0.0);
/// ```
pub fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: [f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_is_intersection_over_union() {
        let a = [0.0, 0.0, 10.0, 10.0];
        assert!((iou(a, [1.0, 1.0, 10.0, 10.0]) - 0.81).abs() < 1e-6);
        assert!((iou(a, [5.0, 0.0, 15.0, 10.0]) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(iou([0.0; 4], [0.0; 4]), 0.0);
    }
}
