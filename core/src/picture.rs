//! Decoded pictures as the pipeline hands them to the models: packed RGB, or
//! planar YUV 4:2:0 (I420) straight from the decoder.
//!
//! A 1080p frame converted to RGB in full costs milliseconds, and the edge
//! needs only a small letterboxed copy for the detector plus a few crops. So
//! frames stay in the decoder's I420, and each consumer converts only the
//! pixels it reads ([`Picture::pixel`], [`Picture::crop_rgb`]; the models'
//! preprocessing filters the three planes and converts after).

/// The YUV to RGB matrix of a stream (its colorimetry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum YuvMatrix {
    /// ITU-R BT.601, standard definition.
    Bt601,
    /// ITU-R BT.709, HD; what most cameras send.
    Bt709,
    /// ITU-R BT.2020.
    Bt2020,
}

/// Where the bytes of a picture are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// 3 bytes a pixel, R G B, rows `stride` bytes apart.
    Rgb { stride: usize },
    /// Planar YUV 4:2:0.
    I420(Planes420),
}

/// Planar YUV 4:2:0: a full-size Y plane at 0, and U and V planes of
/// `ceil(width / 2) x ceil(height / 2)` at their offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Planes420 {
    pub y_stride: usize,
    pub uv_stride: usize,
    pub u_offset: usize,
    pub v_offset: usize,
    pub matrix: YuvMatrix,
    /// Full range (0..255) rather than video range (Y 16..235).
    pub full_range: bool,
}

impl Planes420 {
    /// The conversion of these planes' samples to RGB.
    pub fn converter(&self) -> YuvToRgb {
        YuvToRgb::new(self.matrix, self.full_range)
    }

    /// Where the Y sample of `x, y` and its U and V samples are.
    #[inline]
    fn at(&self, x: usize, y: usize) -> (usize, usize, usize) {
        let c = (y / 2) * self.uv_stride + x / 2;
        (y * self.y_stride + x, self.u_offset + c, self.v_offset + c)
    }
}

impl Layout {
    /// A tightly packed I420 layout for a `width x height` picture and the
    /// number of bytes it takes.
    pub fn i420_packed(
        width: u32,
        height: u32,
        matrix: YuvMatrix,
        full_range: bool,
    ) -> (Layout, usize) {
        let (w, h) = (width as usize, height as usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let layout = Layout::I420(Planes420 {
            y_stride: w,
            uv_stride: cw,
            u_offset: w * h,
            v_offset: w * h + cw * ch,
            matrix,
            full_range,
        });
        (layout, w * h + 2 * cw * ch)
    }
}

/// YUV to RGB as `rgb = y_mul * (Y - y_off) + chroma terms`, in floats so
/// that filtered (fractional) samples convert too.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YuvToRgb {
    y_mul: f32,
    y_off: f32,
    rv: f32,
    gu: f32,
    gv: f32,
    bu: f32,
}

impl YuvToRgb {
    pub fn new(matrix: YuvMatrix, full_range: bool) -> YuvToRgb {
        let (kr, kb) = match matrix {
            YuvMatrix::Bt601 => (0.299f32, 0.114f32),
            YuvMatrix::Bt709 => (0.2126, 0.0722),
            YuvMatrix::Bt2020 => (0.2627, 0.0593),
        };
        let kg = 1.0 - kr - kb;
        let (y_mul, y_off, c_mul) = if full_range {
            (1.0, 0.0, 1.0)
        } else {
            (255.0 / 219.0, 16.0, 255.0 / 224.0)
        };
        YuvToRgb {
            y_mul,
            y_off,
            rv: 2.0 * (1.0 - kr) * c_mul,
            gu: -2.0 * kb * (1.0 - kb) / kg * c_mul,
            gv: -2.0 * kr * (1.0 - kr) / kg * c_mul,
            bu: 2.0 * (1.0 - kb) * c_mul,
        }
    }

    /// R, G, B (not clamped) of one Y, U, V sample.
    #[inline]
    pub fn rgb(&self, y: f32, u: f32, v: f32) -> [f32; 3] {
        let l = (y - self.y_off) * self.y_mul;
        let (u, v) = (u - 128.0, v - 128.0);
        [
            l + self.rv * v,
            l + self.gu * u + self.gv * v,
            l + self.bu * u,
        ]
    }

    /// R, G, B bytes of one Y, U, V sample.
    #[inline]
    pub fn rgb8(&self, y: u8, u: u8, v: u8) -> [u8; 3] {
        self.rgb(f32::from(y), f32::from(u), f32::from(v))
            .map(|c| c.round().clamp(0.0, 255.0) as u8)
    }
}

/// A decoded picture in memory, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Picture<'a> {
    pub data: &'a [u8],
    pub width: u32,
    pub height: u32,
    pub layout: Layout,
}

impl<'a> Picture<'a> {
    /// A tightly packed RGB picture; panics if `data` is shorter than
    /// `width * height * 3`.
    pub fn rgb(data: &'a [u8], width: u32, height: u32) -> Picture<'a> {
        assert!(
            data.len() >= width as usize * height as usize * 3,
            "RGB picture data too short"
        );
        Picture {
            data,
            width,
            height,
            layout: Layout::Rgb {
                stride: width as usize * 3,
            },
        }
    }

    /// A picture in `layout`; panics if `data` is too short for it.
    pub fn new(data: &'a [u8], width: u32, height: u32, layout: Layout) -> Picture<'a> {
        let (w, h) = (width as usize, height as usize);
        let need = match layout {
            Layout::Rgb { stride } => {
                assert!(stride >= w * 3, "RGB stride shorter than a row");
                if h == 0 {
                    0
                } else {
                    (h - 1) * stride + w * 3
                }
            }
            Layout::I420(p) => {
                let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
                assert!(
                    p.y_stride >= w && p.uv_stride >= cw,
                    "I420 stride shorter than a row"
                );
                let plane = |at: usize, stride: usize, rows: usize, row: usize| {
                    if rows == 0 {
                        at
                    } else {
                        at + (rows - 1) * stride + row
                    }
                };
                plane(0, p.y_stride, h, w)
                    .max(plane(p.u_offset, p.uv_stride, ch, cw))
                    .max(plane(p.v_offset, p.uv_stride, ch, cw))
            }
        };
        assert!(data.len() >= need, "picture data too short for its layout");
        Picture {
            data,
            width,
            height,
            layout,
        }
    }

    /// The R, G, B of pixel `x, y` (which must be inside the picture).
    #[inline]
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let (x, y) = (x as usize, y as usize);
        match self.layout {
            Layout::Rgb { stride } => {
                let p = &self.data[y * stride + x * 3..y * stride + x * 3 + 3];
                [p[0], p[1], p[2]]
            }
            Layout::I420(p) => {
                let (l, u, v) = p.at(x, y);
                p.converter().rgb8(self.data[l], self.data[u], self.data[v])
            }
        }
    }

    /// The pixels of the `w x h` rectangle at `x0, y0` (which must lie
    /// inside the picture) as packed RGB rows.
    pub fn crop_rgb(&self, x0: u32, y0: u32, w: u32, h: u32) -> Vec<u8> {
        assert!(
            x0 + w <= self.width && y0 + h <= self.height,
            "crop outside the picture"
        );
        let (x0, y0, w, h) = (x0 as usize, y0 as usize, w as usize, h as usize);
        let mut out = Vec::with_capacity(w * h * 3);
        match self.layout {
            Layout::Rgb { stride } => {
                for y in y0..y0 + h {
                    out.extend_from_slice(
                        &self.data[y * stride + x0 * 3..y * stride + (x0 + w) * 3],
                    );
                }
            }
            Layout::I420(p) => {
                let m = p.converter();
                for y in y0..y0 + h {
                    for x in x0..x0 + w {
                        let (l, u, v) = p.at(x, y);
                        out.extend_from_slice(&m.rgb8(self.data[l], self.data[u], self.data[v]));
                    }
                }
            }
        }
        out
    }

    /// A copy of the `w x h` rectangle at `x0, y0` (which must lie inside
    /// the picture) in the picture's own layout, without converting it: an
    /// I420 rectangle grows by a pixel left and up from odd corners so its
    /// chroma samples stay whole. Cheap enough to take on every frame and
    /// convert only the one that is kept.
    pub fn crop(&self, x0: u32, y0: u32, w: u32, h: u32) -> OwnedPicture {
        assert!(
            x0 + w <= self.width && y0 + h <= self.height,
            "crop outside the picture"
        );
        match self.layout {
            Layout::Rgb { .. } => OwnedPicture {
                data: self.crop_rgb(x0, y0, w, h),
                width: w,
                height: h,
                layout: Layout::Rgb {
                    stride: w as usize * 3,
                },
            },
            Layout::I420(p) => {
                let (ax, ay) = (x0 & !1, y0 & !1);
                let (w, h) = (w + x0 - ax, h + y0 - ay);
                let (layout, len) = Layout::i420_packed(w, h, p.matrix, p.full_range);
                let mut data = Vec::with_capacity(len);
                let (x, y, w, h) = (ax as usize, ay as usize, w as usize, h as usize);
                for row in y..y + h {
                    let at = row * p.y_stride + x;
                    data.extend_from_slice(&self.data[at..at + w]);
                }
                for offset in [p.u_offset, p.v_offset] {
                    for row in y / 2..y / 2 + h.div_ceil(2) {
                        let at = offset + row * p.uv_stride + x / 2;
                        data.extend_from_slice(&self.data[at..at + w.div_ceil(2)]);
                    }
                }
                OwnedPicture {
                    data,
                    width: w as u32,
                    height: h as u32,
                    layout,
                }
            }
        }
    }

    /// The whole picture as packed RGB.
    pub fn to_rgb(&self) -> Vec<u8> {
        self.crop_rgb(0, 0, self.width, self.height)
    }
}

/// A picture that owns its bytes (see [`Picture::crop`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedPicture {
    pub data: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub layout: Layout,
}

impl OwnedPicture {
    pub fn picture(&self) -> Picture<'_> {
        Picture::new(&self.data, self.width, self.height, self.layout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RGB to video-range YUV, the textbook way, for checking the inverse.
    fn to_yuv(matrix: YuvMatrix, [r, g, b]: [f32; 3]) -> [f32; 3] {
        let (kr, kb) = match matrix {
            YuvMatrix::Bt601 => (0.299, 0.114),
            YuvMatrix::Bt709 => (0.2126, 0.0722),
            YuvMatrix::Bt2020 => (0.2627, 0.0593),
        };
        let l = kr * r + (1.0 - kr - kb) * g + kb * b;
        let u = (b - l) / (2.0 * (1.0 - kb));
        let v = (r - l) / (2.0 * (1.0 - kr));
        [
            16.0 + l * 219.0 / 255.0,
            128.0 + u * 224.0 / 255.0,
            128.0 + v * 224.0 / 255.0,
        ]
    }

    #[test]
    fn converts_back_what_the_textbook_formula_made() {
        for matrix in [YuvMatrix::Bt601, YuvMatrix::Bt709, YuvMatrix::Bt2020] {
            let m = YuvToRgb::new(matrix, false);
            for rgb in [
                [0.0, 0.0, 0.0],
                [255.0, 255.0, 255.0],
                [200.0, 30.0, 90.0],
                [12.0, 180.0, 250.0],
            ] {
                let [y, u, v] = to_yuv(matrix, rgb);
                let back = m.rgb(y, u, v);
                for c in 0..3 {
                    assert!(
                        (back[c] - rgb[c]).abs() < 0.01,
                        "{matrix:?} {rgb:?} -> {back:?}"
                    );
                }
            }
        }
        // Video-range black and white, and full range passing grey through.
        assert_eq!(
            YuvToRgb::new(YuvMatrix::Bt709, false).rgb8(16, 128, 128),
            [0, 0, 0]
        );
        assert_eq!(
            YuvToRgb::new(YuvMatrix::Bt709, false).rgb8(235, 128, 128),
            [255, 255, 255]
        );
        assert_eq!(
            YuvToRgb::new(YuvMatrix::Bt601, true).rgb8(77, 128, 128),
            [77, 77, 77]
        );
    }

    #[test]
    fn i420_pixels_and_crops_use_the_chroma_of_their_2x2_block() {
        // 3x3: chroma planes are 2x2; the left two columns and top two rows
        // share the first chroma sample.
        let (layout, len) = Layout::i420_packed(3, 3, YuvMatrix::Bt601, true);
        assert_eq!(len, 9 + 2 * 4);
        let mut data = vec![100u8; len];
        data[9..].fill(128);
        // U and V of the bottom-right block push towards blue.
        data[9 + 3] = 200;
        data[13 + 3] = 60;
        let p = Picture::new(&data, 3, 3, layout);
        assert_eq!(p.pixel(0, 0), [100, 100, 100]);
        assert_eq!(p.pixel(1, 1), [100, 100, 100]);
        let blue = p.pixel(2, 2);
        assert!(blue[2] > 200 && blue[0] < 50, "{blue:?}");
        let all = p.to_rgb();
        assert_eq!(all.len(), 27);
        assert_eq!(&all[24..27], &blue);
        assert_eq!(p.crop_rgb(2, 2, 1, 1), blue.to_vec());
        assert_eq!(p.crop_rgb(1, 0, 1, 2), [100u8; 6].to_vec());
    }

    #[test]
    fn rgb_pictures_read_their_bytes() {
        let data: Vec<u8> = (0..2 * 2 * 3).map(|v| v as u8).collect();
        let p = Picture::rgb(&data, 2, 2);
        assert_eq!(p.pixel(1, 1), [9, 10, 11]);
        assert_eq!(p.crop_rgb(0, 1, 2, 1), (6..12).collect::<Vec<u8>>());
    }

    #[test]
    #[should_panic(expected = "too short")]
    fn a_short_buffer_is_refused() {
        let (layout, len) = Layout::i420_packed(4, 4, YuvMatrix::Bt709, false);
        let data = vec![0u8; len - 1];
        Picture::new(&data, 4, 4, layout);
    }

    #[test]
    fn crops_keep_their_layout_and_convert_like_the_whole() {
        let (w, h) = (9u32, 7u32);
        let (layout, len) = Layout::i420_packed(w, h, YuvMatrix::Bt709, false);
        let data: Vec<u8> = (0..len).map(|i| (i * 37 % 200 + 20) as u8).collect();
        let p = Picture::new(&data, w, h, layout);
        let all = p.to_rgb();
        let rgb_at = |x: u32, y: u32| {
            let i = (y * w + x) as usize * 3;
            [all[i], all[i + 1], all[i + 2]]
        };
        // An odd corner grows to the even one before it.
        let c = p.crop(3, 1, 4, 5);
        assert_eq!((c.width, c.height), (5, 6));
        let cp = c.picture();
        for y in 0..c.height {
            for x in 0..c.width {
                assert_eq!(cp.pixel(x, y), rgb_at(x + 2, y), "{x},{y}");
            }
        }
        let c = p.crop(8, 6, 1, 1);
        assert_eq!(c.picture().pixel(0, 0), rgb_at(8, 6));
        let rgb = Picture::rgb(&all, w, h).crop(3, 1, 4, 5);
        assert_eq!((rgb.width, rgb.height), (4, 5));
        assert_eq!(rgb.picture().pixel(0, 0), rgb_at(3, 1));
    }
}
