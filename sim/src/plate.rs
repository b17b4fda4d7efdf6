//! Plates in the Kazakhstan formats and a few foreign ones, drawn flat and
//! front-facing, with the wear of real plates.
//!
//! Layouts follow ST RK 986-2012 (520 x 112 mm single line: flag and `KZ`
//! band on the left, `123 ABC`, region code boxed on the right; 280 x 200 mm
//! two-line), the pre-2012 `A 123 BCD` plates, and the plates of the
//! neighbours most often seen in Almaty (Russia, Kyrgyzstan, Uzbekistan) and
//! a generic European one. Everything, including dirt, is a pure function of
//! the [`PlateSpec`].

use image::RgbaImage;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safecity_core::{parse_plate, PlateError, PlateFormat};

use super::font::{self, layout_text, Cap, FontStyle, TextLayout, TextOpts};
use super::raster::{
    fill_circle, fill_convex, fill_round_rect, hash01, sd_capsule, stroke_line, stroke_round_rect,
    Canvas, Pt,
};
use super::truth::PlateLayout;

/// A plate to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct PlateSpec {
    /// Canonical text, `123ABC02`; it parses as `format`.
    pub text: String,
    pub format: PlateFormat,
    pub layout: PlateLayout,
    /// 0 clean .. 1 very dirty.
    pub dirt: f32,
    /// Varies small details (wear, stroke weight) deterministically.
    pub style_seed: u64,
}

/// Kazakhstan region codes with their share of plates on Almaty roads:
/// Almaty and Almaty Region dominate, the capital and Shymkent follow.
const REGION_WEIGHTS: [(&str, u32); 20] = [
    ("01", 10),
    ("02", 34),
    ("03", 2),
    ("04", 2),
    ("05", 14),
    ("06", 2),
    ("07", 2),
    ("08", 3),
    ("09", 3),
    ("10", 2),
    ("11", 2),
    ("12", 2),
    ("13", 3),
    ("14", 2),
    ("15", 2),
    ("16", 3),
    ("17", 5),
    ("18", 2),
    ("19", 3),
    ("20", 1),
];

/// First letters of pre-2012 plates (one per region).
const LEGACY_REGIONS: &[u8] = b"ABCDEFHLMNPRSTXZ";
/// Letters shared by the Cyrillic and Latin alphabets, the only ones on
/// Russian plates.
const RU_LETTERS: &[u8] = b"ABEKMHOPCTYX";
const RU_REGIONS: &[&str] = &[
    "77", "97", "99", "177", "197", "199", "777", "799", "50", "90", "150", "190", "750", "78",
    "98", "178", "54", "154", "55", "66", "96", "196", "16", "116", "02", "102", "74", "174", "22",
    "122", "24", "124", "38", "42", "142", "45", "56", "72", "86", "89", "70", "75",
];
const UZ_REGIONS: &[&str] = &[
    "01", "10", "20", "25", "30", "40", "50", "60", "70", "75", "80", "85", "90", "95",
];
const EU_COUNTRIES: &[&str] = &["D", "PL", "LT", "LV", "EST", "FIN", "CZ", "NL", "TR", "UA"];

fn letters<R: Rng + ?Sized>(rng: &mut R, set: &[u8], n: usize) -> String {
    (0..n).map(|_| *set.choose(rng).unwrap() as char).collect()
}

fn digits<R: Rng + ?Sized>(rng: &mut R, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

/// Three digits, never `000`.
fn serial<R: Rng + ?Sized>(rng: &mut R) -> String {
    format!("{:03}", rng.gen_range(1..1000))
}

const AZ: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn kz_region<R: Rng + ?Sized>(rng: &mut R) -> &'static str {
    let total: u32 = REGION_WEIGHTS.iter().map(|r| r.1).sum();
    let mut k = rng.gen_range(0..total);
    for (code, w) in REGION_WEIGHTS {
        if k < w {
            return code;
        }
        k -= w;
    }
    "02"
}

/// A foreign plate text; it never fits a Kazakhstan format.
fn foreign_text<R: Rng + ?Sized>(rng: &mut R) -> String {
    loop {
        let u: f32 = rng.gen();
        let text = if u < 0.4 {
            let region = RU_REGIONS.choose(rng).unwrap();
            format!(
                "{}{}{}{region}",
                letters(rng, RU_LETTERS, 1),
                serial(rng),
                letters(rng, RU_LETTERS, 2)
            )
        } else if u < 0.6 {
            format!(
                "{:02}KG{}{}",
                rng.gen_range(1..10),
                serial(rng),
                letters(rng, AZ, 3)
            )
        } else if u < 0.8 {
            let region = UZ_REGIONS.choose(rng).unwrap();
            if rng.gen_bool(0.7) {
                format!(
                    "{region}{}{}{}",
                    letters(rng, AZ, 1),
                    serial(rng),
                    letters(rng, AZ, 2)
                )
            } else {
                format!("{region}{}{}", serial(rng), letters(rng, AZ, 3))
            }
        } else {
            match *EU_COUNTRIES.choose(rng).unwrap() {
                "D" => {
                    let n1 = rng.gen_range(1..=3);
                    let n2 = rng.gen_range(1..=2);
                    let n3 = rng.gen_range(1..=4);
                    format!(
                        "{}{}{}",
                        letters(rng, AZ, n1),
                        letters(rng, AZ, n2),
                        digits(rng, n3)
                    )
                }
                "PL" => format!("{}{}", letters(rng, AZ, 2), digits(rng, 5)),
                "NL" => format!(
                    "{}{}{}",
                    digits(rng, 2),
                    letters(rng, AZ, 3),
                    digits(rng, 1)
                ),
                "TR" => format!(
                    "{:02}{}{}",
                    rng.gen_range(1..82),
                    letters(rng, AZ, 2),
                    digits(rng, 3)
                ),
                "UA" => format!(
                    "{}{}{}",
                    letters(rng, AZ, 2),
                    digits(rng, 4),
                    letters(rng, AZ, 2)
                ),
                _ => format!("{}{}", letters(rng, AZ, 3), digits(rng, 3)),
            }
        };
        if parse_plate(&text).is_ok_and(|p| p.format == PlateFormat::Foreign) {
            return text;
        }
    }
}

impl PlateSpec {
    /// A random plate with the mix of formats seen on Almaty roads.
    pub fn random<R: Rng + ?Sized>(rng: &mut R) -> PlateSpec {
        let u: f32 = rng.gen();
        let format = if u < 0.70 {
            PlateFormat::KzPrivate
        } else if u < 0.80 {
            PlateFormat::KzOrganisation
        } else if u < 0.88 {
            PlateFormat::KzLegacy
        } else {
            PlateFormat::Foreign
        };
        let text = match format {
            PlateFormat::KzPrivate => {
                format!("{}{}{}", serial(rng), letters(rng, AZ, 3), kz_region(rng))
            }
            PlateFormat::KzOrganisation => {
                format!("{}{}{}", serial(rng), letters(rng, AZ, 2), kz_region(rng))
            }
            PlateFormat::KzLegacy => {
                let n = if rng.gen_bool(0.8) { 3 } else { 2 };
                format!(
                    "{}{}{}",
                    letters(rng, LEGACY_REGIONS, 1),
                    serial(rng),
                    letters(rng, AZ, n)
                )
            }
            PlateFormat::Foreign => foreign_text(rng),
        };
        let layout = if format.is_kazakh() && rng.gen_bool(0.08) {
            PlateLayout::TwoLine
        } else {
            PlateLayout::SingleLine
        };
        let d: f32 = rng.gen();
        let dirt = if d < 0.8 {
            rng.gen_range(0.0..0.08)
        } else if d < 0.95 {
            rng.gen_range(0.15..0.5)
        } else {
            rng.gen_range(0.55..1.0)
        };
        PlateSpec {
            text,
            format,
            layout,
            dirt,
            style_seed: rng.gen(),
        }
    }

    /// A clean plate for `text` in any spelling (`"123 abc 02"`); the format
    /// is what the grammar makes of it and the style follows from the text.
    pub fn new(text: &str, layout: PlateLayout) -> Result<PlateSpec, PlateError> {
        let parsed = parse_plate(text)?;
        // FNV-1a, so the same text always gets the same look.
        let style_seed = parsed.text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        });
        Ok(PlateSpec {
            text: parsed.text,
            format: parsed.format,
            layout,
            dirt: 0.0,
            style_seed,
        })
    }
}

/// Physical size `(width, height)` in millimetres of a plate layout.
pub fn plate_size_mm(layout: PlateLayout) -> (f32, f32) {
    match layout {
        PlateLayout::SingleLine => (520.0, 112.0),
        PlateLayout::TwoLine => (280.0, 200.0),
    }
}

/// One character of the plate text as drawn: `bbox` is `[x, y, w, h]` in
/// pixels of the plate image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlateChar {
    pub ch: char,
    pub bbox: [f32; 4],
}

/// Draws the plate flat and front-facing at 1 pixel per millimetre; its
/// corners are the image corners and the cut corners are transparent.
pub fn render_plate(spec: &PlateSpec) -> RgbaImage {
    render_plate_scaled(spec, 1.0)
}

/// [`render_plate`] at `px_per_mm` pixels per millimetre.
pub fn render_plate_scaled(spec: &PlateSpec, px_per_mm: f32) -> RgbaImage {
    render_plate_with_chars(spec, px_per_mm).0
}

/// [`render_plate_scaled`] and where each character of `spec.text` was
/// drawn, in text order (decorations such as `KZ` or `RUS` are not listed
/// unless they are part of the text).
pub fn render_plate_with_chars(spec: &PlateSpec, px_per_mm: f32) -> (RgbaImage, Vec<PlateChar>) {
    let s = px_per_mm.max(0.05);
    let (wmm, hmm) = plate_size_mm(spec.layout);
    let w = ((wmm * s).round() as u32).max(1);
    let h = ((hmm * s).round() as u32).max(1);
    let look = Look::new(spec);
    let mut p = Painter {
        img: RgbaImage::new(w, h),
        s,
        sx: w as f32 / wmm,
        sy: h as f32 / hmm,
        look,
        chars: Vec::new(),
    };
    p.base(wmm, hmm);
    let kind = Kind::of(spec);
    match spec.layout {
        PlateLayout::SingleLine => p.single(&kind),
        PlateLayout::TwoLine => p.two_line(&kind, &spec.text),
    }
    p.screws();
    p.finish(spec);
    let chars = p.chars;
    debug_assert_eq!(
        chars.iter().map(|c| c.ch).collect::<String>(),
        spec.text
            .chars()
            .filter(|c| font::has_glyph(*c))
            .collect::<String>()
    );
    (p.img, chars)
}

/// Which plate design a spec gets.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// 2012 standard: serial digits, letters, region code.
    Kz {
        digits: String,
        letters: String,
        region: String,
    },
    /// Before 2012: region letter, digits, letters.
    KzLegacy {
        region: String,
        digits: String,
        letters: String,
    },
    /// `A123BC77`: letters, digits, letters, region in the right box.
    Ru { main: String, region: String },
    /// `01KG123ABC`.
    Kg { region: String, main: String },
    /// `01A123BC` or `01123ABC`: region at the left.
    Uz { region: String, main: String },
    /// Anything else, under a blue band with a country code.
    Eu { main: String },
}

/// Spaces between runs of letters and digits, `BAB1234` to `BAB 1234`.
fn grouped(text: &str) -> String {
    let mut out = String::new();
    let mut last: Option<bool> = None;
    for ch in text.chars() {
        let d = ch.is_ascii_digit();
        if last.is_some_and(|l| l != d) {
            out.push(' ');
        }
        out.push(ch);
        last = Some(d);
    }
    out
}

fn shape(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_digit() { 'D' } else { 'L' })
        .collect()
}

impl Kind {
    fn of(spec: &PlateSpec) -> Kind {
        let t = spec.text.as_str();
        let sh = shape(t);
        match spec.format {
            PlateFormat::KzPrivate | PlateFormat::KzOrganisation if t.len() >= 7 => {
                let n = t.len();
                Kind::Kz {
                    digits: t[..3].into(),
                    letters: t[3..n - 2].into(),
                    region: t[n - 2..].into(),
                }
            }
            PlateFormat::KzLegacy if t.len() >= 6 => Kind::KzLegacy {
                region: t[..1].into(),
                digits: t[1..4].into(),
                letters: t[4..].into(),
            },
            _ if sh == "LDDDLLDD" || sh == "LDDDLLDDD" => Kind::Ru {
                main: format!("{} {} {}", &t[..1], &t[1..4], &t[4..6]),
                region: t[6..].into(),
            },
            _ if sh == "DDLLDDDLLL" && &t[2..4] == "KG" => Kind::Kg {
                region: t[..2].into(),
                main: format!("{} {}", &t[4..7], &t[7..]),
            },
            _ if sh == "DDLDDDLL" || sh == "DDDDDLLL" => Kind::Uz {
                region: t[..2].into(),
                main: grouped(&t[2..]),
            },
            _ => Kind::Eu { main: grouped(t) },
        }
    }
}

/// The details of one plate's look, all from its style seed.
#[derive(Debug, Clone)]
struct Look {
    bg: [u8; 3],
    ink: [u8; 3],
    font: FontStyle,
    /// Border line width, mm.
    border: f32,
    corner: f32,
    /// Character height multiplier around the standard.
    char_k: f32,
    /// How much of the available width the text spreads over.
    fill: f32,
    emboss: bool,
    /// `KZ` in blue rather than black.
    blue_kz: bool,
    /// Region code in a drawn box rather than behind a separator.
    region_box: bool,
    /// Legacy plates: flag on the right.
    flag_right: bool,
    screws: Option<[u8; 3]>,
    eu_country: &'static str,
    /// Patchy loss of print, 0..1.
    wear: f32,
    seed: u64,
}

impl Look {
    fn new(spec: &PlateSpec) -> Look {
        let mut r = ChaCha8Rng::seed_from_u64(spec.style_seed ^ 0x9A7E_5EED);
        let legacy = spec.format == PlateFormat::KzLegacy;
        // Age yellows the sheeting; old formats are old plates.
        let age: f32 = if legacy {
            r.gen_range(0.3..1.0)
        } else {
            r.gen::<f32>().powi(3)
        };
        let tinted = spec.format == PlateFormat::KzOrganisation && r.gen_bool(0.15);
        let bg = if tinted {
            [226, 236, 248]
        } else {
            let w = r.gen_range(238.0..252.0);
            [
                (w - 4.0 * age) as u8,
                (w - 8.0 * age + r.gen_range(-2.0..2.0)) as u8,
                (w - 4.0 - 34.0 * age) as u8,
            ]
        };
        let fade = (age * 0.25 + spec.dirt * 0.2).min(0.45) * r.gen::<f32>();
        let k = r.gen_range(12.0..34.0);
        let ink = [
            (k + (120.0 - k) * fade) as u8,
            (k + (120.0 - k) * fade) as u8,
            (k + 6.0 + (125.0 - k) * fade) as u8,
        ];
        let mut font = FontStyle::from_seed(spec.style_seed);
        if legacy && r.gen_bool(0.5) {
            font = FontStyle {
                stroke: font.stroke * 0.92,
                width: FontStyle::CONDENSED.width,
                cap: if r.gen_bool(0.3) {
                    Cap::Round
                } else {
                    font.cap
                },
            };
        }
        Look {
            bg,
            ink,
            font,
            border: r.gen_range(1.6..3.2),
            corner: r.gen_range(4.0..9.0),
            // Whole percent steps keep glyph sizes few and cached.
            char_k: 0.95 + 0.01 * r.gen_range(0..9) as f32,
            fill: r.gen_range(0.86..0.97),
            emboss: r.gen_bool(0.85),
            blue_kz: r.gen_bool(0.2),
            region_box: r.gen_bool(0.35),
            flag_right: r.gen_bool(0.3),
            screws: if r.gen_bool(0.45) {
                Some(
                    *[
                        [190, 190, 195],
                        [45, 45, 48],
                        [225, 225, 225],
                        [160, 140, 95],
                    ]
                    .choose(&mut r)
                    .unwrap(),
                )
            } else {
                None
            },
            eu_country: EU_COUNTRIES.choose(&mut r).unwrap(),
            wear: (age * 0.4 + spec.dirt * 0.5) * r.gen::<f32>(),
            seed: spec.style_seed,
        }
    }
}

const KZ_BLUE: [u8; 3] = [0, 170, 200];
const KZ_GOLD: [u8; 3] = [250, 196, 20];
const DARK_BLUE: [u8; 3] = [10, 60, 150];

/// Draws in millimetres onto the plate image.
struct Painter {
    img: RgbaImage,
    s: f32,
    sx: f32,
    sy: f32,
    look: Look,
    chars: Vec<PlateChar>,
}

impl Painter {
    fn pt(&self, x: f32, y: f32) -> Pt {
        [x * self.sx, y * self.sy]
    }

    fn rect(&self, r: [f32; 4]) -> [f32; 4] {
        [
            r[0] * self.sx,
            r[1] * self.sy,
            r[2] * self.sx,
            r[3] * self.sy,
        ]
    }

    fn fill_rect(&mut self, r: [f32; 4], radius: f32, rgb: [u8; 3], a: f32) {
        let pr = self.rect(r);
        fill_round_rect(&mut self.img, pr, radius * self.s, rgb, a);
    }

    fn vline(&mut self, x: f32, y0: f32, y1: f32, width: f32, rgb: [u8; 3]) {
        self.fill_rect([x - width / 2.0, y0, x + width / 2.0, y1], 0.0, rgb, 1.0);
    }

    /// The plate sheet, its rim and the black border line.
    fn base(&mut self, w: f32, h: f32) {
        let l = self.look.clone();
        self.fill_rect([0.0, 0.0, w, h], l.corner, l.bg, 1.0);
        // The pressed rim catches a little shadow.
        let pr = self.rect([0.0, 0.0, w, h]);
        stroke_round_rect(
            &mut self.img,
            pr,
            l.corner * self.s,
            0.9 * self.s,
            [120, 120, 120],
            0.5,
        );
        let inset = 2.2;
        let pr = self.rect([inset, inset, w - inset, h - inset]);
        stroke_round_rect(
            &mut self.img,
            pr,
            (l.corner - inset).max(1.0) * self.s,
            l.border * self.s,
            l.ink,
            1.0,
        );
    }

    /// The inner edge of the border line, mm.
    fn inner(&self) -> f32 {
        2.2 + self.look.border
    }

    /// Lays out `text` `h` mm tall with its top at `y`, centred in
    /// `[x0, x1]` and spread over about `fill` of that width; a space marks a
    /// group gap `gap_k` spacings wide. The font is condensed if it does not
    /// fit.
    #[allow(clippy::too_many_arguments)]
    fn fit(
        &self,
        text: &str,
        x0: f32,
        x1: f32,
        y: f32,
        h: f32,
        fill: f32,
        gap_k: f32,
        style: FontStyle,
    ) -> TextLayout {
        let (x0, x1, y, h) = (x0 * self.sx, x1 * self.sx, y * self.sy, h * self.sy);
        let avail = x1 - x0;
        let n_chars = text.chars().filter(|c| *c != ' ').count();
        let n_sp = text.chars().filter(|c| *c == ' ').count();
        let units = n_chars.saturating_sub(1) as f32 + gap_k * n_sp as f32;
        let (min_sp, max_sp) = (0.05 * h, 0.24 * h);
        let bare = |st: &FontStyle| {
            let o = TextOpts {
                height: h,
                spacing: 0.0,
                space: 0.0,
                tabular_digits: true,
            };
            layout_text(text, &o, st).width
        };
        let mut style = style;
        for _ in 0..4 {
            let w0 = bare(&style);
            if w0 + min_sp * units <= avail || style.width < 0.5 {
                break;
            }
            style.width *= ((avail - min_sp * units) / w0).clamp(0.5, 0.99);
        }
        let w0 = bare(&style);
        let sp = if units > 0.0 {
            ((fill * avail - w0) / units).clamp(min_sp, max_sp)
        } else {
            0.0
        };
        let opts = TextOpts {
            height: h,
            spacing: sp,
            space: sp * gap_k,
            tabular_digits: true,
        };
        let mut l = layout_text(text, &opts, &style);
        l.translate(x0 + (avail - l.width) * 0.5, y);
        l
    }

    /// Like [`Painter::fit`] with digits `dh` and letters `lh` mm tall on
    /// a common base line at `base`.
    #[allow(clippy::too_many_arguments)]
    fn fit_mixed(
        &self,
        text: &str,
        x0: f32,
        x1: f32,
        base: f32,
        dh: f32,
        lh: f32,
        fill: f32,
        style: FontStyle,
    ) -> TextLayout {
        let (x0, x1, base) = (x0 * self.sx, x1 * self.sx, base * self.sy);
        let height = |c: char| if c.is_ascii_digit() { dh } else { lh } * self.sy;
        let cell = font::char_width('8', dh * self.sy, &style);
        let width = |c: char| {
            let w = font::char_width(c, height(c), &style);
            if c.is_ascii_digit() {
                w.max(cell)
            } else {
                w
            }
        };
        let w0: f32 = text.chars().filter(|c| *c != ' ').map(width).sum();
        let n_chars = text.chars().filter(|c| *c != ' ').count();
        let n_sp = text.chars().filter(|c| *c == ' ').count();
        let units = (n_chars.saturating_sub(1) + n_sp) as f32;
        let avail = x1 - x0;
        let sp =
            ((fill * avail - w0) / units.max(1.0)).clamp(0.04 * dh * self.sy, 0.2 * dh * self.sy);
        let total = w0 + sp * units;
        let mut x = x0 + (avail - total) * 0.5;
        let mut boxes = Vec::new();
        for c in text.chars() {
            if c == ' ' {
                x += sp;
                continue;
            }
            let (adv, h) = (width(c), height(c));
            let w = font::char_width(c, h, &style);
            boxes.push(font::CharBox {
                ch: c,
                x: x + (adv - w) * 0.5,
                y: base - h,
                w,
                h,
            });
            x += adv + sp;
        }
        TextLayout {
            boxes,
            width: total,
            height: dh * self.sy,
            style,
        }
    }

    /// Draws a layout, raised like pressed metal; `record` adds its
    /// characters to the plate's ground truth.
    fn draw(&mut self, l: &TextLayout, rgb: [u8; 3], record: bool) {
        if self.look.emboss && self.s > 0.4 {
            let d = 0.7 * self.s;
            let mut shadow = l.clone();
            shadow.translate(d, d);
            font::draw_text(&mut self.img, &shadow, [0, 0, 0], 0.22);
            let mut light = l.clone();
            light.translate(-0.6 * d, -0.6 * d);
            font::draw_text(&mut self.img, &light, [255, 255, 255], 0.45);
        }
        font::draw_text(&mut self.img, l, rgb, 1.0);
        if record {
            self.chars.extend(l.boxes.iter().map(|b| PlateChar {
                ch: b.ch,
                bbox: [b.x, b.y, b.w, b.h],
            }));
        }
    }

    /// The flag of Kazakhstan: sky blue, golden sun over an eagle, an
    /// ornament at the hoist. Detail is suggested; it is 40 mm wide.
    fn kz_flag(&mut self, r: [f32; 4]) {
        let (fw, fh) = (r[2] - r[0], r[3] - r[1]);
        let (cx, cy) = ((r[0] + r[2]) * 0.5 + fw * 0.03, (r[1] + r[3]) * 0.5);
        self.fill_rect(r, 0.4, KZ_BLUE, 1.0);
        let c = self.pt(cx, cy - fh * 0.12);
        let sr = fh * 0.2 * self.s;
        fill_circle(&mut self.img, c, sr * 1.45, KZ_GOLD, 0.45);
        fill_circle(&mut self.img, c, sr, KZ_GOLD, 1.0);
        for side in [-1.0f32, 1.0] {
            let wing = [
                self.pt(cx + side * fw * 0.02, cy + fh * 0.12),
                self.pt(cx + side * fw * 0.30, cy + fh * 0.02),
                self.pt(cx + side * fw * 0.20, cy + fh * 0.20),
                self.pt(cx + side * fw * 0.02, cy + fh * 0.34),
            ];
            fill_convex(&mut self.img, &wing, KZ_GOLD, 1.0);
        }
        let x = r[0] + fw * 0.08;
        self.fill_rect(
            [x, r[1] + fh * 0.06, x + fw * 0.05, r[3] - fh * 0.06],
            0.0,
            KZ_GOLD,
            0.8,
        );
    }

    /// Flag above the `KZ` code in the band `[x0, x1]`.
    fn kz_band(&mut self, x0: f32, x1: f32, flag_y: f32, flag_h: f32, kz_y: f32, kz_h: f32) {
        let fw = (flag_h * 2.0).min(x1 - x0);
        let fx = (x0 + x1 - fw) * 0.5;
        self.kz_flag([fx, flag_y, fx + fw, flag_y + flag_h]);
        let style = FontStyle {
            stroke: 0.17,
            width: 1.0,
            cap: Cap::Square,
        };
        let l = self.fit("KZ", x0, x1, kz_y, kz_h, 0.8, 0.0, style);
        let rgb = if self.look.blue_kz {
            DARK_BLUE
        } else {
            self.look.ink
        };
        self.draw(&l, rgb, false);
    }

    fn single(&mut self, kind: &Kind) {
        let (w, h) = (520.0, 112.0);
        let inner = self.inner();
        let l = self.look.clone();
        let ch = 74.0 * l.char_k;
        let top = (h - ch) * 0.5;
        match kind {
            Kind::Kz {
                digits,
                letters,
                region,
            } => {
                self.kz_band(8.0, 54.0, 16.0, 22.0, 52.0, 30.0);
                let sep = 432.0;
                let main = self.fit(
                    &format!("{digits} {letters}"),
                    58.0,
                    sep - 4.0,
                    top,
                    ch,
                    l.fill,
                    1.4,
                    l.font,
                );
                self.draw(&main, l.ink, true);
                let rh = ch * 0.8;
                if l.region_box {
                    let br = self.rect([sep + 4.0, 12.0, w - 9.0, h - 12.0]);
                    stroke_round_rect(
                        &mut self.img,
                        br,
                        4.0 * self.s,
                        l.border * self.s,
                        l.ink,
                        1.0,
                    );
                } else {
                    self.vline(sep, inner - 0.5, h - inner + 0.5, l.border, l.ink);
                }
                let rl = self.fit(
                    region,
                    sep + 6.0,
                    w - 10.0,
                    (h - rh) * 0.5,
                    rh,
                    0.85,
                    0.0,
                    l.font,
                );
                self.draw(&rl, l.ink, true);
            }
            Kind::KzLegacy {
                region,
                digits,
                letters,
            } => {
                let (bx0, bx1, tx0, tx1) = if l.flag_right {
                    (w - 44.0, w - 9.0, 12.0, w - 48.0)
                } else {
                    (9.0, 44.0, 48.0, w - 12.0)
                };
                self.kz_band(bx0, bx1, 22.0, 16.0, 48.0, 22.0);
                let ch = 70.0 * l.char_k;
                let t = format!("{region} {digits} {letters}");
                let main = self.fit(&t, tx0, tx1, (h - ch) * 0.5, ch, l.fill, 1.3, l.font);
                self.draw(&main, l.ink, true);
            }
            Kind::Ru { main, region } => {
                let sep = 392.0;
                // Digits are taller than letters on Russian plates; all
                // share the base line.
                let dh = 66.0 * l.char_k;
                let lh = dh * 0.74;
                let base = h * 0.5 + dh * 0.5 + 3.0;
                let boxes = self.fit_mixed(main, 14.0, sep - 8.0, base, dh, lh, l.fill, l.font);
                self.draw(&boxes, l.ink, true);
                self.vline(sep, inner - 0.5, h - inner + 0.5, l.border, l.ink);
                let rh = 46.0;
                let rl = self.fit(
                    region,
                    sep + 4.0,
                    w - inner - 3.0,
                    8.5,
                    rh,
                    0.9,
                    0.0,
                    l.font,
                );
                self.draw(&rl, l.ink, true);
                let small = FontStyle {
                    stroke: 0.15,
                    ..FontStyle::REGULAR
                };
                let rus = self.fit("RUS", sep + 6.0, sep + 60.0, 72.0, 18.0, 0.9, 0.0, small);
                self.draw(&rus, l.ink, false);
                let fx = sep + 66.0;
                let (fy, fh, fw) = (72.0, 18.0, 40.0);
                for (i, c) in [[250, 250, 250], [0, 57, 166], [213, 43, 30]]
                    .iter()
                    .enumerate()
                {
                    let y0 = fy + fh * i as f32 / 3.0;
                    self.fill_rect([fx, y0, fx + fw, y0 + fh / 3.0], 0.0, *c, 1.0);
                }
                let fr = self.rect([fx, fy, fx + fw, fy + fh]);
                stroke_round_rect(&mut self.img, fr, 0.0, 0.6 * self.s, [60, 60, 60], 1.0);
            }
            Kind::Kg { region, main } => {
                let sep = 82.0;
                let rl = self.fit(
                    region,
                    inner + 4.0,
                    sep - 4.0,
                    top + 6.0,
                    ch - 12.0,
                    0.9,
                    0.0,
                    l.font,
                );
                self.draw(&rl, l.ink, true);
                self.vline(sep, inner - 0.5, h - inner + 0.5, l.border, l.ink);
                // Red band with the yellow sun of the Kyrgyz flag over `KG`.
                let red = [218, 30, 40];
                self.fill_rect(
                    [sep + 3.0, inner + 2.0, sep + 48.0, h - inner - 2.0],
                    1.5,
                    red,
                    1.0,
                );
                let c = self.pt(sep + 25.5, 32.0);
                fill_circle(&mut self.img, c, 13.0 * self.s, [255, 210, 0], 0.5);
                fill_circle(&mut self.img, c, 9.0 * self.s, [255, 210, 0], 1.0);
                fill_circle(&mut self.img, c, 5.0 * self.s, red, 1.0);
                let kg = self.fit("KG", sep + 5.0, sep + 46.0, 56.0, 34.0, 0.9, 0.0, l.font);
                self.draw(&kg, [250, 250, 250], true);
                let m = self.fit(main, sep + 54.0, w - 12.0, top, ch, l.fill, 1.4, l.font);
                self.draw(&m, l.ink, true);
            }
            Kind::Uz { region, main } => {
                let sep = 92.0;
                let rl = self.fit(
                    region,
                    inner + 4.0,
                    sep - 4.0,
                    top + 4.0,
                    ch - 8.0,
                    0.9,
                    0.0,
                    l.font,
                );
                self.draw(&rl, l.ink, true);
                self.vline(sep, inner - 0.5, h - inner + 0.5, l.border, l.ink);
                let m = self.fit(main, sep + 6.0, w - 58.0, top, ch, l.fill, 1.3, l.font);
                self.draw(&m, l.ink, true);
                // Flag of Uzbekistan over `UZ`.
                let (fx, fy, fw, fh) = (w - 52.0, 18.0, 40.0, 24.0);
                let stripes = [[30, 130, 200], [250, 250, 250], [30, 160, 70]];
                for (i, c) in stripes.iter().enumerate() {
                    let y0 = fy + fh * i as f32 / 3.0;
                    self.fill_rect([fx, y0, fx + fw, y0 + fh / 3.0], 0.0, *c, 1.0);
                }
                for y in [fy + fh / 3.0, fy + 2.0 * fh / 3.0] {
                    self.fill_rect([fx, y - 0.5, fx + fw, y + 0.5], 0.0, [210, 30, 40], 1.0);
                }
                let uz = self.fit("UZ", fx, fx + fw, 52.0, 26.0, 0.8, 0.0, l.font);
                self.draw(&uz, DARK_BLUE, false);
            }
            Kind::Eu { main } => {
                // Blue band with the ring of stars and the country code.
                let band = [inner - 0.5, inner - 0.5, 46.0, h - inner + 0.5];
                self.fill_rect(band, 2.0, [0, 51, 153], 1.0);
                let (cx, cy) = (band[0] + (band[2] - band[0]) * 0.5, 34.0);
                for i in 0..12 {
                    let a = i as f32 * std::f32::consts::TAU / 12.0;
                    let c = self.pt(cx + 12.0 * a.cos(), cy + 12.0 * a.sin());
                    fill_circle(&mut self.img, c, 2.0 * self.s, [255, 204, 0], 1.0);
                }
                let code = self.look.eu_country;
                let cl = self.fit(
                    code,
                    band[0] + 2.0,
                    band[2] - 2.0,
                    62.0,
                    30.0,
                    0.85,
                    0.0,
                    l.font,
                );
                self.draw(&cl, [255, 255, 255], false);
                let m = self.fit(main, 52.0, w - 12.0, top, ch, l.fill, 1.6, l.font);
                self.draw(&m, l.ink, true);
            }
        }
    }

    fn two_line(&mut self, kind: &Kind, text: &str) {
        let w = 280.0;
        let l = self.look.clone();
        let ch = 78.0 * l.char_k;
        let (row1, row2) = (14.0, 108.0);
        match kind {
            Kind::Kz {
                digits,
                letters,
                region,
            } => {
                self.kz_band(8.0, 48.0, 20.0, 19.0, 52.0, 26.0);
                let rx0 = 204.0;
                let top = self.fit(digits, 52.0, rx0 - 4.0, row1, ch, 0.98, 0.0, l.font);
                self.draw(&top, l.ink, true);
                let bottom = self.fit(letters, 52.0, w - 10.0, row2, ch, 0.9, 0.0, l.font);
                self.draw(&bottom, l.ink, true);
                let rh = 50.0;
                let ry = row1 + (ch - rh) * 0.5;
                let br = self.rect([rx0, ry - 9.0, w - 9.0, ry + rh + 9.0]);
                stroke_round_rect(
                    &mut self.img,
                    br,
                    4.0 * self.s,
                    l.border * self.s,
                    l.ink,
                    1.0,
                );
                let rl = self.fit(region, rx0 + 3.0, w - 12.0, ry, rh, 0.9, 0.0, l.font);
                self.draw(&rl, l.ink, true);
            }
            Kind::KzLegacy {
                region,
                digits,
                letters,
            } => {
                self.kz_band(8.0, 48.0, 20.0, 19.0, 52.0, 26.0);
                let top = self.fit(
                    &format!("{region} {digits}"),
                    52.0,
                    w - 10.0,
                    row1,
                    ch,
                    0.95,
                    1.0,
                    l.font,
                );
                self.draw(&top, l.ink, true);
                let bottom = self.fit(letters, 52.0, w - 10.0, row2, ch, 0.9, 0.0, l.font);
                self.draw(&bottom, l.ink, true);
            }
            _ => {
                // Foreign text on a square plate: split near the middle,
                // at a change between letters and digits if there is one.
                let chars: Vec<char> = text.chars().collect();
                let n = chars.len();
                let mut cut = n.div_ceil(2);
                for d in 0..n / 2 {
                    for c in [n / 2 + d, n / 2 - d] {
                        if c > 0
                            && c < n
                            && chars[c - 1].is_ascii_digit() != chars[c].is_ascii_digit()
                        {
                            cut = c;
                        }
                    }
                    if cut != n.div_ceil(2) {
                        break;
                    }
                }
                let a: String = chars[..cut].iter().collect();
                let b: String = chars[cut..].iter().collect();
                let inner = self.inner();
                let top = self.fit(&a, inner + 8.0, w - inner - 8.0, row1, ch, 0.9, 0.0, l.font);
                self.draw(&top, l.ink, true);
                let bottom = self.fit(&b, inner + 8.0, w - inner - 8.0, row2, ch, 0.9, 0.0, l.font);
                self.draw(&bottom, l.ink, true);
            }
        }
    }

    /// Mounting screws in the two widest gaps between characters.
    fn screws(&mut self) {
        let Some(rgb) = self.look.screws else {
            return;
        };
        if self.chars.len() < 2 {
            return;
        }
        let mut gaps: Vec<(f32, Pt)> = self
            .chars
            .windows(2)
            // Screws go between groups (digits and letters), where plates
            // leave room for them, never inside a group.
            .filter(|w| {
                (w[0].bbox[1] - w[1].bbox[1]).abs() < 1.0
                    && w[1].bbox[0] > w[0].bbox[0]
                    && w[0].ch.is_ascii_digit() != w[1].ch.is_ascii_digit()
            })
            .map(|w| {
                let x0 = w[0].bbox[0] + w[0].bbox[2];
                let x1 = w[1].bbox[0];
                let cy = w[0].bbox[1] + w[0].bbox[3] * 0.5;
                (x1 - x0, [(x0 + x1) * 0.5, cy])
            })
            .collect();
        gaps.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (gap, c) in gaps.into_iter().take(2) {
            // Screws sit in group gaps wide enough for a real screw head.
            if gap < 9.0 * self.s {
                continue;
            }
            let r = (gap * 0.5 - 0.8 * self.s).min(5.5 * self.s);
            let dark = rgb.map(|v| (v as f32 * 0.45) as u8);
            fill_circle(
                &mut self.img,
                [c[0] + 0.4 * self.s, c[1] + 0.5 * self.s],
                r,
                [0, 0, 0],
                0.3,
            );
            fill_circle(&mut self.img, c, r, dark, 1.0);
            fill_circle(&mut self.img, c, r * 0.82, rgb, 1.0);
            fill_circle(
                &mut self.img,
                [c[0] - r * 0.3, c[1] - r * 0.3],
                r * 0.3,
                [255, 255, 255],
                0.35,
            );
            let a = hash01(c[0] as i32, c[1] as i32, self.look.seed as u32) * std::f32::consts::PI;
            let d = [a.cos() * r * 0.6, a.sin() * r * 0.6];
            stroke_line(
                &mut self.img,
                [c[0] - d[0], c[1] - d[1]],
                [c[0] + d[0], c[1] + d[1]],
                r * 0.25,
                dark,
                0.9,
            );
        }
    }

    /// Sheeting grain, uneven light, worn print, dirt and scratches.
    fn finish(&mut self, spec: &PlateSpec) {
        let l = self.look.clone();
        let seed = (l.seed ^ (l.seed >> 32)) as u32;
        let (w, h) = self.img.dimensions();
        let s = self.s;
        let dirt = spec.dirt.clamp(0.0, 1.0);
        let shade = Grid::new(w, h, 60.0 * s, 60.0 * s, seed ^ 1);
        // Cell sizes that share no multiple, so the lattices do not show.
        let film = Grid::new(w, h, 37.0 * s, 31.0 * s, seed ^ 2);
        let blot = Grid::new(w, h, 17.0 * s, 13.0 * s, seed ^ 5);
        let fine = Grid::new(w, h, 5.3 * s, 4.1 * s, seed ^ 3);
        let streak = Grid::new(w, h, 7.3 * s, 53.0 * s, seed ^ 6);
        let wear = Grid::new(w, h, 14.0 * s, 11.0 * s, seed ^ 4);
        let mud: [f32; 3] = [
            [96.0, 82.0, 62.0],
            [110.0, 104.0, 96.0],
            [80.0, 70.0, 58.0],
            [150.0, 138.0, 115.0],
        ][(seed % 4) as usize];
        let bg = l.bg.map(|v| v as f32);
        let thr = 0.62 - 0.2 * dirt;
        let worn = l.wear > 0.03;
        let dirty = dirt > 0.01;
        let grain = grain_tile();
        let (gx, gy) = ((seed & 63) as usize, ((seed >> 6) & 63) as usize);
        let stride = w as usize * 4;
        let buf: &mut [u8] = &mut self.img;
        for (y, row) in buf.chunks_exact_mut(stride).enumerate() {
            let y = y as u32;
            let (shade, blot, fine, wear) = (shade.row(y), blot.row(y), fine.row(y), wear.row(y));
            let (film, streak) = (film.row(y), streak.row(y));
            // Dirt collects along the bottom, where spray hits.
            let fy = y as f32 / h as f32;
            let spray = 0.7 + 0.6 * fy * fy;
            let mut light = 1.0;
            let grain_row = &grain[((y as usize + gy) & 63) * 64..][..64];
            for (x, px) in row.chunks_exact_mut(4).enumerate() {
                let x = x as u32;
                // The light varies over tens of millimetres; every 4th
                // pixel is enough.
                if x.is_multiple_of(4) {
                    light = 1.0 + (shade.at(x) - 0.5) * 0.08;
                }
                if px[3] == 0 {
                    continue;
                }
                let mut c = [px[0] as f32, px[1] as f32, px[2] as f32];
                let f = if worn || dirty { fine.at(x) } else { 0.0 };
                if worn {
                    let wv = wear.at(x) * 0.7 + f * 0.3;
                    let k = ((wv - 0.55) * 3.0).clamp(0.0, 1.0) * l.wear * 0.7;
                    for i in 0..3 {
                        c[i] += (bg[i] - c[i]) * k;
                    }
                }
                if dirty {
                    // A film of dust, soft blotches and run-down streaks.
                    let dust = dirt * 0.3 * spray * (0.5 + film.at(x));
                    let b = (blot.at(x) * 0.6 + f * 0.4) * spray;
                    let t = ((b - thr) / 0.22).clamp(0.0, 1.0);
                    let blotch = t * t * (3.0 - 2.0 * t) * dirt * 0.75;
                    let run = (streak.at(x) - 0.6).max(0.0) * 1.2 * dirt * fy * fy;
                    let a = (dust + blotch + run).min(0.85);
                    for i in 0..3 {
                        c[i] += (mud[i] - c[i]) * a;
                    }
                }
                let grain = grain_row[(x as usize + gx) & 63];
                for i in 0..3 {
                    px[i] = (c[i] * light + grain).clamp(0.0, 255.0) as u8;
                }
            }
        }
        // Scratches: thin light or dark lines, more on dirty plates.
        let mut r = ChaCha8Rng::seed_from_u64(l.seed ^ 0x5C7A_7C4E);
        let n = (dirt * 6.0 + r.gen::<f32>() * 1.5) as u32;
        let (wmm, hmm) = (w as f32 / s, h as f32 / s);
        for _ in 0..n {
            let a = [r.gen_range(0.0..wmm), r.gen_range(0.0..hmm)];
            let ang: f32 = r.gen_range(-0.5..0.5);
            let len = r.gen_range(15.0..110.0);
            let b = [a[0] + ang.cos() * len, a[1] + ang.sin() * len];
            let rgb = if r.gen_bool(0.6) {
                [235, 235, 230]
            } else {
                [70, 70, 70]
            };
            let alpha = r.gen_range(0.25..0.6);
            let (pa, pb) = (self.pt(a[0], a[1]), self.pt(b[0], b[1]));
            scratch(&mut self.img, pa, pb, r.gen_range(0.3..0.8) * s, rgb, alpha);
        }
    }
}

/// A 64 x 64 tile of sheeting grain, about +-3.5 levels, shared by all
/// plates (each starts at its own offset).
fn grain_tile() -> &'static [f32] {
    static TILE: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    TILE.get_or_init(|| {
        (0..64 * 64)
            .map(|i| (hash01(i % 64, i / 64, 0x6A41) - 0.5) * 7.0)
            .collect()
    })
}

/// A line that only marks the plate, not its transparent surroundings.
fn scratch(img: &mut RgbaImage, a: Pt, b: Pt, width: f32, rgb: [u8; 3], alpha: f32) {
    let (w, h) = img.dimensions();
    let mut tmp = Vec::new();
    let r = width * 0.5;
    let bb = [
        a[0].min(b[0]) - r - 1.0,
        a[1].min(b[1]) - r - 1.0,
        a[0].max(b[0]) + r + 1.0,
        a[1].max(b[1]) + r + 1.0,
    ];
    for y in (bb[1].max(0.0) as u32)..(bb[3].max(0.0) as u32).min(h) {
        for x in (bb[0].max(0.0) as u32)..(bb[2].max(0.0) as u32).min(w) {
            if img.get_pixel(x, y).0[3] == 255 {
                let d = sd_capsule(x as f32 + 0.5, y as f32 + 0.5, a, b, r.max(0.35));
                let cov = (0.5 - d).clamp(0.0, 1.0) * (width / (2.0 * r.max(0.35))).min(1.0);
                if cov > 0.0 {
                    tmp.push((x, y, cov));
                }
            }
        }
    }
    for (x, y, cov) in tmp {
        img.blend(x, y, rgb, cov * alpha);
    }
}

/// Smooth value noise on a lattice of `cell` pixels, precomputed so that a
/// lookup is a few multiply-adds: per column the lattice index and weight
/// are tabled, per row they are computed once by [`Grid::row`].
struct Grid {
    nx: usize,
    /// Rows per lattice cell, inverted.
    inv: f32,
    vals: Vec<f32>,
    col_i: Vec<u32>,
    col_t: Vec<f32>,
}

/// One row of a [`Grid`]: its two lattice rows and their blend weight.
struct GridRow<'a> {
    g: &'a Grid,
    r0: usize,
    ty: f32,
}

fn smooth(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

impl Grid {
    fn new(w: u32, h: u32, cell_x: f32, cell_y: f32, seed: u32) -> Grid {
        let (cx, cy) = (cell_x.max(1.0), cell_y.max(1.0));
        let nx = (w as f32 / cx).ceil() as usize + 2;
        let ny = (h as f32 / cy).ceil() as usize + 2;
        let vals = (0..nx * ny)
            .map(|i| hash01((i % nx) as i32, (i / nx) as i32, seed))
            .collect();
        let inv_x = 1.0 / cx;
        let col_i = (0..w).map(|x| (x as f32 * inv_x) as u32).collect();
        let col_t = (0..w)
            .map(|x| {
                let f = x as f32 * inv_x;
                smooth(f - f.floor())
            })
            .collect();
        Grid {
            nx,
            inv: 1.0 / cy,
            vals,
            col_i,
            col_t,
        }
    }

    fn row(&self, y: u32) -> GridRow<'_> {
        let f = y as f32 * self.inv;
        GridRow {
            g: self,
            r0: f as usize * self.nx,
            ty: smooth(f - f.floor()),
        }
    }
}

impl GridRow<'_> {
    #[inline]
    fn at(&self, x: u32) -> f32 {
        let g = self.g;
        let i = self.r0 + g.col_i[x as usize] as usize;
        let tx = g.col_t[x as usize];
        let v = &g.vals;
        let top = v[i] + (v[i + 1] - v[i]) * tx;
        let bot = v[i + g.nx] + (v[i + g.nx + 1] - v[i + g.nx]) * tx;
        top + (bot - top) * self.ty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn luma(p: &image::Rgba<u8>) -> f32 {
        0.299 * p.0[0] as f32 + 0.587 * p.0[1] as f32 + 0.114 * p.0[2] as f32
    }

    /// Mean luminance of the opaque pixels of `img` in `[x0, y0, x1, y1]`.
    fn mean_luma(img: &RgbaImage, r: [f32; 4]) -> f32 {
        let (mut sum, mut n) = (0.0, 0.0);
        for y in r[1].max(0.0) as u32..(r[3] as u32).min(img.height()) {
            for x in r[0].max(0.0) as u32..(r[2] as u32).min(img.width()) {
                sum += luma(img.get_pixel(x, y));
                n += 1.0;
            }
        }
        sum / n
    }

    fn spec(text: &str, layout: PlateLayout) -> PlateSpec {
        PlateSpec::new(text, layout).unwrap()
    }

    #[test]
    fn random_specs_parse_as_their_format_in_the_stated_mix() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut counts = std::collections::HashMap::new();
        let (mut two_line, mut dirty, mut almaty) = (0, 0, 0);
        for _ in 0..10_000 {
            let s = PlateSpec::random(&mut rng);
            let p = parse_plate(&s.text).unwrap();
            assert_eq!(p.format, s.format, "{}", s.text);
            assert_eq!(p.text, s.text, "text must be canonical");
            assert!(s
                .text
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
            assert!((0.0..=1.0).contains(&s.dirt));
            if s.layout == PlateLayout::TwoLine {
                assert!(s.format.is_kazakh());
                two_line += 1;
            }
            dirty += (s.dirt > 0.1) as u32;
            almaty += (p.region.as_deref() == Some("02")) as u32;
            *counts.entry(s.format).or_insert(0u32) += 1;
        }
        let share = |f| counts[&f] as f32 / 10_000.0;
        assert!((share(PlateFormat::KzPrivate) - 0.70).abs() < 0.02);
        assert!((share(PlateFormat::KzOrganisation) - 0.10).abs() < 0.015);
        assert!((share(PlateFormat::KzLegacy) - 0.08).abs() < 0.015);
        assert!((share(PlateFormat::Foreign) - 0.12).abs() < 0.015);
        assert!((500..1000).contains(&two_line), "{two_line}");
        assert!((1500..2600).contains(&dirty), "{dirty}");
        assert!(almaty > 2500, "{almaty}");
    }

    #[test]
    fn random_foreign_plates_cover_every_design() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut kinds = std::collections::HashSet::new();
        for _ in 0..3000 {
            let s = PlateSpec::random(&mut rng);
            if s.format == PlateFormat::Foreign {
                kinds.insert(std::mem::discriminant(&Kind::of(&s)));
            }
        }
        assert_eq!(kinds.len(), 4);
    }

    #[test]
    fn new_parses_any_spelling() {
        let s = spec("123 abc-02", PlateLayout::SingleLine);
        assert_eq!(s.text, "123ABC02");
        assert_eq!(s.format, PlateFormat::KzPrivate);
        assert_eq!(s, spec("123ABC02", PlateLayout::SingleLine));
        assert_eq!(
            spec("A123BC77", PlateLayout::SingleLine).format,
            PlateFormat::Foreign
        );
        assert!(PlateSpec::new("12#", PlateLayout::SingleLine).is_err());
    }

    #[test]
    fn rendering_is_deterministic_and_sized_by_layout() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for _ in 0..40 {
            let mut s = PlateSpec::random(&mut rng);
            s.dirt = 0.8;
            let a = render_plate(&s);
            assert_eq!(a, render_plate(&s), "{}", s.text);
            let (w, h) = plate_size_mm(s.layout);
            assert_eq!(a.dimensions(), (w as u32, h as u32));
        }
        let s = spec("123ABC02", PlateLayout::SingleLine);
        assert_eq!(render_plate_scaled(&s, 0.5).dimensions(), (260, 56));
        let mut other = s.clone();
        other.style_seed ^= 1;
        assert_ne!(render_plate(&s), render_plate(&other));
    }

    #[test]
    fn corners_are_transparent_and_the_rest_opaque() {
        let s = spec("123ABC02", PlateLayout::SingleLine);
        let img = render_plate(&s);
        assert_eq!(img.get_pixel(0, 0).0[3], 0);
        assert_eq!(img.get_pixel(519, 111).0[3], 0);
        assert_eq!(img.get_pixel(260, 0).0[3], 255);
        assert_eq!(img.get_pixel(0, 56).0[3], 255);
        assert_eq!(img.get_pixel(260, 56).0[3], 255);
    }

    #[test]
    fn characters_are_dark_on_light_in_text_order() {
        for (text, layout) in [
            ("123ABC02", PlateLayout::SingleLine),
            ("777KM17", PlateLayout::SingleLine),
            ("A123BCD", PlateLayout::SingleLine),
            ("123ABC05", PlateLayout::TwoLine),
            ("B456KA", PlateLayout::TwoLine),
            ("A123BC777", PlateLayout::SingleLine),
            ("01KG123ABC", PlateLayout::SingleLine),
            ("01A123BC", PlateLayout::SingleLine),
            ("BAB1234", PlateLayout::SingleLine),
            ("BAB1234", PlateLayout::TwoLine),
        ] {
            let s = spec(text, layout);
            let (img, chars) = render_plate_with_chars(&s, 1.0);
            let got: String = chars.iter().map(|c| c.ch).collect();
            assert_eq!(got, s.text);
            // The background just above the border is light; a character's
            // central column is much darker.
            let bg = mean_luma(
                &img,
                [
                    img.width() as f32 * 0.5 - 20.0,
                    5.5,
                    img.width() as f32 * 0.5 + 20.0,
                    6.5,
                ],
            );
            for c in &chars {
                let [x, y, w, h] = c.bbox;
                assert!(
                    x >= 0.0
                        && y >= 0.0
                        && x + w <= img.width() as f32
                        && y + h <= img.height() as f32,
                    "{text}: {c:?}"
                );
                let ink = mean_luma(&img, [x, y, x + w, y + h]);
                let ink_col = mean_luma(
                    &img,
                    [
                        x + w * 0.5 - 1.0,
                        y + h * 0.3,
                        x + w * 0.5 + 1.0,
                        y + h * 0.7,
                    ],
                );
                // The white `KG` on the red band is light on dark.
                if text.contains("KG") && (c.ch == 'K' || c.ch == 'G') {
                    continue;
                }
                assert!(
                    ink < bg - 25.0 || ink_col < bg - 60.0,
                    "{text} {c:?}: {ink} / {ink_col} vs {bg}"
                );
            }
            assert!(bg > 190.0, "{text}: {bg}");
        }
    }

    #[test]
    fn dirt_darkens_the_plate() {
        let mut s = spec("123ABC02", PlateLayout::SingleLine);
        let clean = render_plate(&s);
        s.dirt = 1.0;
        let dirty = render_plate(&s);
        let all = [0.0, 0.0, 520.0, 112.0];
        assert!(mean_luma(&dirty, all) < mean_luma(&clean, all) - 10.0);
    }

    /// Writes a sheet of random plates to `/tmp/safecity_plates.png`.
    #[test]
    #[ignore]
    fn write_plate_sheet() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (cols, rows) = (3u32, 12u32);
        let mut sheet =
            RgbaImage::from_pixel(cols * 540, rows * 215, image::Rgba([90, 110, 90, 255]));
        let mut specs: Vec<PlateSpec> = (0..cols * rows)
            .map(|_| PlateSpec::random(&mut rng))
            .collect();
        for (i, t) in [
            "123ABC02",
            "777KM17",
            "A123BCD",
            "A123BC777",
            "01KG123ABC",
            "01A123BC",
            "BAB1234",
            "123ABC05",
        ]
        .iter()
        .enumerate()
        {
            specs[i] = spec(
                t,
                if i == 7 {
                    PlateLayout::TwoLine
                } else {
                    PlateLayout::SingleLine
                },
            );
        }
        let t0 = std::time::Instant::now();
        let plates: Vec<RgbaImage> = specs.iter().map(render_plate).collect();
        eprintln!("{:?} per plate", t0.elapsed() / plates.len() as u32);
        let t0 = std::time::Instant::now();
        for _ in 0..200 {
            render_plate(&specs[0]);
        }
        eprintln!("{:?} per cached plate", t0.elapsed() / 200);
        let t0 = std::time::Instant::now();
        for s in &specs {
            render_plate(s);
        }
        eprintln!(
            "{:?} per cached random plate",
            t0.elapsed() / specs.len() as u32
        );
        for (i, p) in plates.iter().enumerate() {
            let (x, y) = ((i as u32 % cols) * 540 + 10, (i as u32 / cols) * 215 + 8);
            image::imageops::overlay(&mut sheet, p, x as i64, y as i64);
        }
        sheet.save("/tmp/safecity_plates.png").unwrap();
    }
}
