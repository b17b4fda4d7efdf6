//! Detector outputs to boxes: the common YOLO layouts and class-wise NMS.
//!
//! Every decoder reads one image's slice of the output tensor and returns
//! boxes in the model's input pixels; [`crate::Letterbox::to_source`] maps
//! them back to the source image.

use safecity_core::iou;
use serde::{Deserialize, Serialize};

/// How a detector lays out its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorLayout {
    /// Ultralytics YOLOv8/v11: `[B, 4 + C, N]`, boxes `cx, cy, w, h`, class
    /// scores already through a sigmoid, no objectness.
    Yolov8,
    /// YOLOv5/v7: `[B, N, 5 + C]`, `cx, cy, w, h, objectness, classes...`.
    Yolov5,
    /// YOLOX exported without decoding: `[B, N, 5 + C]`, box offsets on the
    /// stride grid, objectness and classes through a sigmoid.
    Yolox,
    /// NMS-free end-to-end exports (YOLOv10 style): `[B, N, 6]` of
    /// `x1, y1, x2, y2, score, class`.
    EndToEnd,
}

/// A detected object in input pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// `x1, y1, x2, y2`.
    pub bbox: [f32; 4],
    pub score: f32,
    pub class: usize,
}

/// The shape of one image's output, without the batch dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputShape {
    /// `[rows, cols]` of the per-image output matrix as stored.
    pub dims: [usize; 2],
}

/// Why a detector output cannot be decoded: its shape is not the one its
/// layout says.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OutputShapeError {
    #[error("{layout:?} output is {got:?}; expected {expected}")]
    Shape {
        layout: DetectorLayout,
        got: [usize; 2],
        expected: String,
    },
}

fn xywh_to_xyxy(cx: f32, cy: f32, w: f32, h: f32) -> [f32; 4] {
    [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]
}

/// The best class and its score among `scores`.
fn best_class(scores: impl Iterator<Item = f32>) -> (usize, f32) {
    scores.enumerate().fold(
        (0, f32::MIN),
        |best, (i, s)| if s > best.1 { (i, s) } else { best },
    )
}

/// Decodes one image's output (`data` row-major with shape `shape.dims`)
/// into boxes scoring at least `threshold`, before NMS.
///
/// `classes` is the number of classes the model was described with;
/// `input` is the model's `(width, height)`, used by the YOLOX grid.
pub fn decode_detections(
    layout: DetectorLayout,
    data: &[f32],
    shape: OutputShape,
    classes: usize,
    input: (u32, u32),
    strides: &[u32],
    threshold: f32,
) -> Result<Vec<Detection>, OutputShapeError> {
    let [rows, cols] = shape.dims;
    debug_assert_eq!(data.len(), rows * cols);
    let bad = |expected: String| OutputShapeError::Shape {
        layout,
        got: shape.dims,
        expected,
    };
    let mut out = Vec::new();
    match layout {
        DetectorLayout::Yolov8 => {
            // Attributes are rows, candidates are columns.
            if rows != 4 + classes {
                return Err(bad(format!("[4 + {classes} classes, N]")));
            }
            let n = cols;
            let at = |r: usize, i: usize| data[r * n + i];
            for i in 0..n {
                let (class, score) = best_class((0..classes).map(|c| at(4 + c, i)));
                if score >= threshold {
                    let bbox = xywh_to_xyxy(at(0, i), at(1, i), at(2, i), at(3, i));
                    out.push(Detection { bbox, score, class });
                }
            }
        }
        DetectorLayout::Yolov5 | DetectorLayout::Yolox => {
            if cols != 5 + classes {
                return Err(bad(format!("[N, 5 + {classes} classes]")));
            }
            let grid = if layout == DetectorLayout::Yolox {
                let cells = yolox_grid(input, strides);
                if cells.len() != rows {
                    let levels: Vec<_> = strides
                        .iter()
                        .map(|s| format!("{}x{}", input.0 / s, input.1 / s))
                        .collect();
                    return Err(bad(format!(
                        "{} candidates for a {}x{} input with strides {strides:?} ({})",
                        cells.len(),
                        input.0,
                        input.1,
                        levels.join(" + ")
                    )));
                }
                Some(cells)
            } else {
                None
            };
            for (i, row) in data.chunks_exact(cols).enumerate() {
                let objectness = row[4];
                if objectness < threshold {
                    continue;
                }
                let (class, class_score) = best_class(row[5..].iter().copied());
                let score = objectness * class_score;
                if score < threshold {
                    continue;
                }
                let (cx, cy, w, h) = match &grid {
                    Some(cells) => {
                        let (gx, gy, s) = cells[i];
                        (
                            (row[0] + gx) * s,
                            (row[1] + gy) * s,
                            row[2].exp() * s,
                            row[3].exp() * s,
                        )
                    }
                    None => (row[0], row[1], row[2], row[3]),
                };
                out.push(Detection {
                    bbox: xywh_to_xyxy(cx, cy, w, h),
                    score,
                    class,
                });
            }
        }
        DetectorLayout::EndToEnd => {
            if cols != 6 {
                return Err(bad("[N, 6] of x1, y1, x2, y2, score, class".into()));
            }
            for row in data.chunks_exact(6) {
                let class = row[5].round();
                if row[4] >= threshold && class >= 0.0 && (class as usize) < classes {
                    out.push(Detection {
                        bbox: [row[0], row[1], row[2], row[3]],
                        score: row[4],
                        class: class as usize,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// `(x, y, stride)` of every YOLOX candidate, level by level, row-major.
fn yolox_grid(input: (u32, u32), strides: &[u32]) -> Vec<(f32, f32, f32)> {
    let mut cells = Vec::new();
    for &s in strides {
        let (w, h) = (input.0 / s, input.1 / s);
        for y in 0..h {
            for x in 0..w {
                cells.push((x as f32, y as f32, s as f32));
            }
        }
    }
    cells
}

/// Class-wise non-maximum suppression: keeps, per class, the best box of
/// every group overlapping by more than `iou_threshold`. Sorted by score.
pub fn nms(mut detections: Vec<Detection>, iou_threshold: f32) -> Vec<Detection> {
    detections.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::with_capacity(detections.len().min(64));
    for d in detections {
        let suppressed = kept
            .iter()
            .any(|k| k.class == d.class && iou(k.bbox, d.bbox) > iou_threshold);
        if !suppressed {
            kept.push(d);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(rows: usize, cols: usize) -> OutputShape {
        OutputShape { dims: [rows, cols] }
    }

    #[test]
    fn yolov8_reads_attributes_by_row() {
        // 2 classes, 3 candidates: [cx, cy, w, h, c0, c1] by row.
        #[rustfmt::skip]
        let data = [
            100.0, 50.0, 10.0,   // cx
            100.0, 50.0, 10.0,   // cy
             20.0, 10.0,  2.0,   // w
             40.0, 10.0,  2.0,   // h
              0.9,  0.1,  0.2,   // class 0
              0.05, 0.8,  0.1,   // class 1
        ];
        let d = decode_detections(
            DetectorLayout::Yolov8,
            &data,
            shape(6, 3),
            2,
            (640, 640),
            &[],
            0.5,
        )
        .unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(
            d[0],
            Detection {
                bbox: [90.0, 80.0, 110.0, 120.0],
                score: 0.9,
                class: 0
            }
        );
        assert_eq!(d[1].class, 1);
        assert_eq!(d[1].bbox, [45.0, 45.0, 55.0, 55.0]);
    }

    #[test]
    fn yolov5_multiplies_objectness_by_class_score() {
        let data = [
            50.0, 50.0, 10.0, 10.0, 0.9, 0.5, 0.8, 1.0, 1.0, 1.0, 1.0, 0.3, 0.9, 0.9,
        ];
        let d = decode_detections(
            DetectorLayout::Yolov5,
            &data,
            shape(2, 7),
            2,
            (640, 640),
            &[],
            0.5,
        )
        .unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].class, 1);
        assert!((d[0].score - 0.72).abs() < 1e-6);
    }

    #[test]
    fn yolox_decodes_offsets_on_the_stride_grid() {
        // A 64x32 input with strides 16 and 32: 4x2 + 2x1 = 10 candidates.
        let classes = 1;
        let mut data = vec![0.0f32; 10 * 6];
        // Candidate 5 is level 0, cell (1, 1); candidate 9 is level 1, cell (1, 0).
        data[5 * 6..6 * 6].copy_from_slice(&[0.5, 0.5, 0.0, (2.0f32).ln(), 0.9, 1.0]);
        data[9 * 6..10 * 6].copy_from_slice(&[0.0, 0.25, 0.0, 0.0, 0.8, 0.9]);
        let d = decode_detections(
            DetectorLayout::Yolox,
            &data,
            shape(10, 6),
            classes,
            (64, 32),
            &[16, 32],
            0.5,
        )
        .unwrap();
        assert_eq!(d.len(), 2);
        // (1 + 0.5) * 16 = 24 centre; w = 16, h = 32.
        assert_eq!(d[0].bbox, [16.0, 8.0, 32.0, 40.0]);
        assert_eq!(d[1].bbox, [16.0, -8.0, 48.0, 24.0]);
        assert!((d[1].score - 0.72).abs() < 1e-6);

        let err = decode_detections(
            DetectorLayout::Yolox,
            &data,
            shape(10, 6),
            classes,
            (64, 64),
            &[16, 32],
            0.5,
        )
        .unwrap_err();
        assert!(err.to_string().contains("4x4 + 2x2"), "{err}");
    }

    #[test]
    fn end_to_end_outputs_pass_through_with_a_threshold() {
        let data = [
            1.0, 2.0, 3.0, 4.0, 0.9, 1.0, 5.0, 6.0, 7.0, 8.0, 0.2, 0.0, 1.0, 1.0, 2.0, 2.0, 0.9,
            7.0,
        ];
        let d = decode_detections(
            DetectorLayout::EndToEnd,
            &data,
            shape(3, 6),
            2,
            (640, 640),
            &[],
            0.5,
        )
        .unwrap();
        assert_eq!(
            d,
            vec![Detection {
                bbox: [1.0, 2.0, 3.0, 4.0],
                score: 0.9,
                class: 1
            }]
        );
    }

    #[test]
    fn a_wrong_class_count_is_named() {
        let err = decode_detections(
            DetectorLayout::Yolov8,
            &[0.0; 18],
            shape(6, 3),
            5,
            (640, 640),
            &[],
            0.5,
        )
        .unwrap_err();
        assert!(err.to_string().contains("4 + 5 classes"), "{err}");
    }

    #[test]
    fn nms_is_class_wise() {
        let a = Detection {
            bbox: [0.0, 0.0, 10.0, 10.0],
            score: 0.9,
            class: 0,
        };
        let b = Detection {
            bbox: [1.0, 1.0, 10.0, 10.0],
            score: 0.8,
            class: 0,
        };
        let c = Detection {
            bbox: [1.0, 1.0, 10.0, 10.0],
            score: 0.7,
            class: 1,
        };
        let far = Detection {
            bbox: [50.0, 50.0, 60.0, 60.0],
            score: 0.6,
            class: 0,
        };
        assert_eq!(nms(vec![far, b, c, a], 0.5), vec![a, c, far]);
        assert!((iou(a.bbox, b.bbox) - 0.81).abs() < 1e-6);
        assert_eq!(iou(a.bbox, far.bbox), 0.0);
    }
}
