//! Vehicle body colour from pixels: no model, a vote of the pixels in the
//! lower middle of the vehicle box (below the windows, inside the wheels).

use safecity_core::Picture;

/// The colour names the system reports, as in the event schema.
pub const COLOURS: [&str; 9] = [
    "white", "black", "silver", "grey", "red", "blue", "green", "yellow", "brown",
];

/// The body colour of the vehicle in `bbox` (`x1, y1, x2, y2`) and the share
/// of sampled pixels that voted for it (0..1). `None` for a box too small to
/// sample.
pub fn vehicle_colour(frame: &Picture<'_>, bbox: [f32; 4]) -> Option<(&'static str, f32)> {
    let (w, h) = (bbox[2] - bbox[0], bbox[3] - bbox[1]);
    if w < 6.0 || h < 6.0 {
        return None;
    }
    let x0 = (bbox[0] + 0.2 * w).max(0.0) as u32;
    let x1 = ((bbox[0] + 0.8 * w) as u32).min(frame.width);
    let y0 = (bbox[1] + 0.45 * h).max(0.0) as u32;
    let y1 = ((bbox[1] + 0.8 * h) as u32).min(frame.height);
    if x1 <= x0 || y1 <= y0 {
        return None;
    }
    // At most about 48x24 samples, whatever the box size.
    let step_x = ((x1 - x0) / 48).max(1);
    let step_y = ((y1 - y0) / 24).max(1);
    let mut votes = [0u32; COLOURS.len()];
    let mut total = 0u32;
    let mut y = y0;
    while y < y1 {
        let mut x = x0;
        while x < x1 {
            let [r, g, b] = frame.pixel(x, y);
            votes[classify(r, g, b)] += 1;
            total += 1;
            x += step_x;
        }
        y += step_y;
    }
    let (best, &n) = votes.iter().enumerate().max_by_key(|(_, &n)| n)?;
    (total > 0).then(|| (COLOURS[best], n as f32 / total as f32))
}

/// One pixel's colour name, as an index into [`COLOURS`].
fn classify(r: u8, g: u8, b: u8) -> usize {
    let (r, g, b) = (r as f32, g as f32, b as f32);
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let sat = if max > 0.0 { (max - min) / max } else { 0.0 };
    if max < 50.0 {
        return 1; // black
    }
    if sat < 0.2 || max - min < 25.0 {
        return if max > 185.0 {
            0 // white
        } else if max > 100.0 {
            2 // silver
        } else {
            3 // grey
        };
    }
    let hue = if max == r {
        60.0 * ((g - b) / (max - min)).rem_euclid(6.0)
    } else if max == g {
        60.0 * ((b - r) / (max - min) + 2.0)
    } else {
        60.0 * ((r - g) / (max - min) + 4.0)
    };
    match hue {
        h if !(15.0..340.0).contains(&h) => 4, // red
        h if h < 45.0 => {
            if max < 150.0 {
                8 // brown
            } else {
                7 // yellow
            }
        }
        h if h < 70.0 => 7,  // yellow
        h if h < 170.0 => 6, // green
        h if h < 270.0 => 5, // blue
        _ => 4,              // magenta reads as red
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(rgb: [u8; 3]) -> Vec<u8> {
        rgb.repeat(64 * 48)
    }

    #[test]
    fn solid_colours_are_named() {
        for (rgb, name) in [
            ([240, 240, 236], "white"),
            ([10, 10, 12], "black"),
            ([150, 152, 155], "silver"),
            ([70, 72, 74], "grey"),
            ([180, 20, 20], "red"),
            ([20, 40, 160], "blue"),
            ([20, 120, 40], "green"),
            ([230, 180, 20], "yellow"),
            ([110, 60, 25], "brown"),
        ] {
            let data = solid(rgb);
            let frame = Picture::rgb(&data, 64, 48);
            let (got, share) = vehicle_colour(&frame, [0.0, 0.0, 64.0, 48.0]).unwrap();
            assert_eq!(got, name, "{rgb:?}");
            assert!(share > 0.99);
        }
    }

    #[test]
    fn tiny_or_outside_boxes_give_none() {
        let data = solid([1, 2, 3]);
        let frame = Picture::rgb(&data, 64, 48);
        assert!(vehicle_colour(&frame, [0.0, 0.0, 4.0, 4.0]).is_none());
        assert!(vehicle_colour(&frame, [100.0, 100.0, 140.0, 140.0]).is_none());
    }
}
