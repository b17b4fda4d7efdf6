"""Synthetic plates of many countries, typefaces and conditions, for the
plate reader.

The scene simulator draws Kazakhstan plates in one monoline typeface; a
reader trained on those alone learns that typeface. This module draws plates
with the open fonts Debian ships (DIN-like, condensed grotesques, US-style
narrow faces), in the layouts seen on Kazakhstan roads and abroad
(Kazakhstan, Russia, Kyrgyzstan, Uzbekistan, EU countries, Mercosur and old
Argentine and Brazilian plates, US states), one or two lines, with the
printing a reader must ignore (country bands, state names, slogans, region
boxes), then puts each plate into a picture with a perspective, and spoils it
the way real cameras do: low resolution, blur, motion, JPEG, low light and
noise, infrared looks, colour casts, glare, shadows, dirt, occlusion.

`make_item(rng)` returns one plate in the shape `plate_data.cut_patches`
gives for real and simulated plates (patch, box, corners, text, layout,
label), so the same crop and augmentation code reads all three.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from common import encode_text
from plate_data import _perspective_coeffs

# Fonts from Debian packages (scripts/setup.sh installs them for training);
# (path, how condensed its digits already are: 1.0 normal, <1 narrow).
FONT_CANDIDATES = [
    ("/usr/share/fonts/truetype/opendin/OSP-DIN.ttf", 0.9),
    ("/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf", 0.9),
    ("/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed.ttf", 0.9),
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", 1.0),
    ("/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf", 1.0),
    ("/usr/share/fonts/truetype/liberation2/LiberationSans-Bold.ttf", 1.0),
    ("/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf", 1.0),
    ("/usr/share/fonts/truetype/liberation2/LiberationMono-Bold.ttf", 1.0),
    ("/usr/share/fonts/truetype/freefont/FreeSansBold.ttf", 1.0),
    ("/usr/share/fonts/truetype/freefont/FreeSans.ttf", 1.0),
    ("/usr/share/fonts/truetype/paratype/PTN77F.ttf", 0.8),
    ("/usr/share/fonts/truetype/paratype/PTN57F.ttf", 0.8),
    ("/usr/share/fonts/truetype/paratype/PTS75F.ttf", 1.0),
    ("/usr/share/fonts/truetype/paratype/PTC75F.ttf", 0.9),
    ("/usr/share/fonts/opentype/bebas-neue/BebasNeue-Bold.otf", 0.7),
    ("/usr/share/fonts/opentype/bebas-neue/BebasNeue-Regular.otf", 0.7),
    ("/usr/share/fonts/truetype/roboto/unhinted/RobotoCondensed-Bold.ttf", 0.8),
    ("/usr/share/fonts/truetype/roboto/unhinted/RobotoCondensed-Regular.ttf", 0.8),
    ("/usr/share/fonts/truetype/roboto/unhinted/RobotoCondensed-Medium.ttf", 0.8),
    ("/usr/share/fonts/truetype/open-sans/OpenSans-CondBold.ttf", 0.8),
    ("/usr/share/fonts/truetype/open-sans/OpenSans-Bold.ttf", 1.0),
    ("/usr/share/fonts/opentype/b612/B612-Bold.otf", 1.0),
    ("/usr/share/fonts/opentype/b612/B612Mono-Bold.otf", 1.0),
    ("/usr/share/fonts/truetype/clear-sans/ClearSans-Bold.ttf", 1.0),
    ("/usr/share/fonts/truetype/clear-sans/ClearSans-Medium.ttf", 1.0),
    ("/usr/share/fonts/opentype/inter/Inter-Bold.otf", 1.0),
    ("/usr/share/fonts/opentype/inter/Inter-SemiBold.otf", 1.0),
    ("/usr/share/fonts/opentype/league-spartan/LeagueSpartan-Bold.otf", 1.0),
    ("/usr/share/fonts/opentype/cantarell/Cantarell-Bold.otf", 1.0),
]
# Small print on plates (state names, slogans, country names).
SMALL_FONT_CANDIDATES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationSerif-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationSans-Italic.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSansBoldOblique.ttf",
]
FONT_PACKAGES = (
    "fonts-opendin fonts-dejavu-core fonts-dejavu-extra fonts-liberation2 fonts-freefont-ttf "
    "fonts-paratype fonts-bebas-neue fonts-roboto-unhinted fonts-open-sans fonts-b612 "
    "fonts-clear-sans fonts-inter fonts-league-spartan fonts-cantarell"
)


@lru_cache(maxsize=None)
def fonts() -> tuple[list[tuple[str, float]], list[str]]:
    big = [(p, c) for p, c in FONT_CANDIDATES if Path(p).is_file()]
    small = [p for p in SMALL_FONT_CANDIDATES if Path(p).is_file()]
    if len(big) < 4 or not small:
        raise SystemExit(
            f"plate_synth: only {len(big)} plate fonts found; install them with "
            f"`apt-get install {FONT_PACKAGES}` (scripts/setup.sh --train does)"
        )
    return big, small


@lru_cache(maxsize=4096)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


AZ = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIG = "0123456789"
RU_LETTERS = "ABEKMHOPCTYX"
KZ_REGIONS = ["01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19", "20"]
STATES = [
    "CALIFORNIA", "TEXAS", "NEW YORK", "FLORIDA", "ILLINOIS", "OHIO", "GEORGIA", "MICHIGAN", "ARIZONA",
    "NEVADA", "OREGON", "WASHINGTON", "COLORADO", "VIRGINIA", "NEW JERSEY", "MARYLAND", "INDIANA",
    "Pennsylvania", "Massachusetts", "Tennessee", "Missouri", "Wisconsin", "Minnesota", "Alabama",
]
SLOGANS = [
    "dmv.ca.gov", "The Lone Star State", "Sunshine State", "Land of Lincoln", "EMPIRE STATE",
    "Great Lakes", "Grand Canyon State", "visit pa.com", "Garden State", "The Silver State",
    "Peach State", "Live Free or Die", "Famous Potatoes", "America's Dairyland", "10,000 lakes",
]
COUNTRY_NAMES = ["REPUBLICA ARGENTINA", "BRASIL", "MERCOSUR", "URUGUAY", "PARAGUAY", "ARGENTINA"]
EU_CODES = ["D", "PL", "RO", "F", "I", "E", "NL", "CZ", "LT", "LV", "EST", "FIN", "UA", "TR", "BG", "H", "SK", "A", "B"]


def _pick(rng: np.random.Generator, s: str, n: int) -> str:
    return "".join(s[i] for i in rng.integers(0, len(s), n))


def _serial(rng) -> str:
    return f"{int(rng.integers(1, 1000)):03d}"


# A design: groups of characters (each group a string drawn together), its
# canonical text, lines ("1" or "2"), and the decorations to draw.
def _design(rng: np.random.Generator) -> dict:
    u = rng.random()
    d: dict = {"lines": 1, "aspect": 520 / 112, "band": None, "top": None, "bottom": None, "region_box": None}
    if u < 0.22:  # Kazakhstan, 2012 standard
        letters = _pick(rng, AZ, 3 if rng.random() < 0.8 else 2)
        region = KZ_REGIONS[int(rng.integers(0, len(KZ_REGIONS)))]
        digits = _serial(rng)
        d.update(text=digits + letters + region, band="kz", region_box=region)
        if rng.random() < 0.15:
            d.update(lines=2, aspect=280 / 200, rows=[digits + " " + region, letters], region_box=None)
        else:
            d["groups"] = [digits, letters]
    elif u < 0.28:  # Kazakhstan, before 2012
        text = _pick(rng, "ABCDEFHLMNPRSTXZ", 1) + _serial(rng) + _pick(rng, AZ, 3 if rng.random() < 0.8 else 2)
        d.update(text=text, groups=[text[0], text[1:4], text[4:]], band="kz_old")
    elif u < 0.38:  # Russia
        main = _pick(rng, RU_LETTERS, 1) + _serial(rng) + _pick(rng, RU_LETTERS, 2)
        region = str(int(rng.choice([77, 97, 99, 177, 197, 777, 50, 150, 750, 78, 98, 54, 55, 66, 96, 16, 116, 2, 102, 74, 174, 22, 24, 38, 42])))
        region = region.zfill(2)
        d.update(text=main + region, region_box=region, band="rus")
        if rng.random() < 0.12:
            d.update(lines=2, aspect=290 / 170, rows=[main[:4], main[4:] + " " + region], region_box=None, band=None)
        else:
            d["groups"] = [main[0], main[1:4], main[4:]]
    elif u < 0.43:  # Kyrgyzstan, Uzbekistan
        if rng.random() < 0.5:
            region = f"{int(rng.integers(1, 10)):02d}"
            main = _serial(rng) + _pick(rng, AZ, 3)
            d.update(text=region + "KG" + main, groups=[region, "KG", main[:3], main[3:]], band="flag")
        else:
            region = str(rng.choice(["01", "10", "20", "25", "30", "40", "50", "60", "70", "75", "80", "85", "90", "95"]))
            main = _pick(rng, AZ, 1) + _serial(rng) + _pick(rng, AZ, 2)
            d.update(text=region + main, groups=[region, main[0], main[1:4], main[4:]], band="flag", region_box=None)
    elif u < 0.61:  # EU countries
        code = str(rng.choice(EU_CODES))
        if code == "D":
            a, b, n = _pick(rng, AZ, int(rng.integers(1, 4))), _pick(rng, AZ, int(rng.integers(1, 3))), _pick(rng, DIG, int(rng.integers(1, 5)))
            groups = [a, b, n]
        elif code == "PL":
            groups = [_pick(rng, AZ, 2), _pick(rng, DIG, 5) if rng.random() < 0.5 else _pick(rng, DIG, 1) + _pick(rng, AZ, 2) + _pick(rng, DIG, 2)]
        elif code == "RO":
            groups = ["B", _pick(rng, DIG, 3), _pick(rng, AZ, 3)] if rng.random() < 0.4 else [_pick(rng, AZ, 2), _pick(rng, DIG, 2), _pick(rng, AZ, 3)]
        elif code in ("F", "I"):
            groups = [_pick(rng, AZ, 2), _pick(rng, DIG, 3), _pick(rng, AZ, 2)]
        elif code == "E":
            groups = [_pick(rng, DIG, 4), _pick(rng, "BCDFGHJKLMNPRSTVWXYZ", 3)]
        elif code == "NL":
            groups = [_pick(rng, DIG, 2), _pick(rng, AZ, 3), _pick(rng, DIG, 1)] if rng.random() < 0.5 else [_pick(rng, AZ, 2), _pick(rng, DIG, 3), _pick(rng, AZ, 1)]
        elif code == "CZ":
            groups = [_pick(rng, DIG, 1) + _pick(rng, AZ, 1) + _pick(rng, AZ + DIG, 1), _pick(rng, DIG, 4)]
        elif code == "UA":
            groups = [_pick(rng, AZ, 2), _pick(rng, DIG, 4), _pick(rng, AZ, 2)]
        elif code == "TR":
            groups = [f"{int(rng.integers(1, 82)):02d}", _pick(rng, AZ, int(rng.integers(1, 4))), _pick(rng, DIG, int(rng.integers(2, 5)))]
        elif code == "BG":
            groups = [_pick(rng, "ABCEHKMOPTXY", 2), _pick(rng, DIG, 4), _pick(rng, "ABCEHKMOPTXY", 2)]
        else:
            groups = [_pick(rng, AZ, int(rng.integers(1, 3))), _pick(rng, DIG, int(rng.integers(2, 5))), _pick(rng, AZ, int(rng.integers(0, 3)))]
        groups = [g for g in groups if g]
        d.update(text="".join(groups), groups=groups, band="eu", band_text=code)
        if code in ("NL",) and rng.random() < 0.7:
            d["bg"] = "yellow"
        if rng.random() < 0.1:  # square EU plate
            half = max(1, len(groups) // 2)
            d.update(lines=2, aspect=280 / 200, rows=[" ".join(groups[:half]), " ".join(groups[half:])])
    elif u < 0.70:  # Mercosur (Argentina, Brazil)
        if rng.random() < 0.5:
            groups = [_pick(rng, AZ, 2), _pick(rng, DIG, 3), _pick(rng, AZ, 2)]
        else:
            groups = [_pick(rng, AZ, 3) + _pick(rng, DIG, 1) + _pick(rng, AZ, 1) + _pick(rng, DIG, 2)]
        d.update(text="".join(groups), groups=groups, aspect=400 / 130, band="mercosur", top=str(rng.choice(COUNTRY_NAMES)))
    elif u < 0.80:  # old Argentina, old Brazil
        if rng.random() < 0.6:
            groups = [_pick(rng, AZ, 3), _pick(rng, DIG, 3)]
            d.update(aspect=294 / 129, bg="black" if rng.random() < 0.7 else "white", top="ARGENTINA" if rng.random() < 0.4 else None)
        else:
            groups = [_pick(rng, AZ, 3), _pick(rng, DIG, 4)]
            d.update(aspect=400 / 130, bg="grey", top=None)
        d.update(text="".join(groups), groups=groups)
    elif u < 0.94:  # US states
        pat = str(rng.choice(["DLLLDDD", "LLLDDDD", "LLLDDD", "DDDLLL", "LLDDDDD", "DLLDDDD", "DDDDDD", "LLLLDDD", "DDLLLDD", "LDDDDDD"]))
        text = "".join(_pick(rng, AZ, 1) if c == "L" else _pick(rng, DIG, 1) for c in pat)
        cut = int(rng.integers(2, len(text) - 1)) if rng.random() < 0.6 else None
        groups = [text[:cut], text[cut:]] if cut else [text]
        d.update(text=text, groups=groups, aspect=rng.uniform(1.85, 2.1), top=str(rng.choice(STATES)),
                 bottom=str(rng.choice(SLOGANS)) if rng.random() < 0.7 else None, bg="us")
    else:  # anything: 4 to 8 characters
        n = int(rng.integers(4, 9))
        text = _pick(rng, AZ + DIG, n)
        cut = int(rng.integers(1, n)) if rng.random() < 0.5 else None
        groups = [text[:cut], text[cut:]] if cut else [text]
        d.update(text=text, groups=groups, aspect=rng.uniform(2.0, 5.0))
    return d


def _colours(rng, d) -> tuple[tuple, tuple]:
    """Background and ink colours."""
    bg = d.get("bg")
    jitter = lambda c, s=18: tuple(int(np.clip(v + rng.normal(0, s), 0, 255)) for v in c)  # noqa: E731
    if bg == "yellow":
        return jitter((235, 200, 40)), jitter((20, 20, 20), 10)
    if bg == "black":
        return jitter((25, 25, 28), 10), jitter((225, 225, 225), 15)
    if bg == "grey":
        return jitter((185, 185, 180)), jitter((25, 25, 25), 10)
    if bg == "us":
        base = [(240, 240, 240), (235, 235, 215), (225, 235, 245), (245, 240, 225), (255, 250, 230)][int(rng.integers(0, 5))]
        ink = [(20, 30, 110), (150, 20, 20), (20, 20, 20), (20, 80, 40), (30, 30, 60)][int(rng.integers(0, 5))]
        return jitter(base), jitter(ink, 15)
    if rng.random() < 0.04:  # diplomatic and other coloured plates
        return jitter([(40, 60, 150), (170, 30, 30), (30, 110, 60)][int(rng.integers(0, 3))]), jitter((240, 240, 240), 10)
    return jitter((238, 238, 236), 10), jitter((18, 18, 20), 10)


def _draw_group(draw, x, y, text, font, fill, stroke, squeeze, canvas):
    """Draws `text` at x, y squeezed horizontally by `squeeze`; returns its
    width. Squeezing draws on a separate layer and resizes it."""
    bbox = font.getbbox(text, stroke_width=stroke)
    w, h = bbox[2] - bbox[0], bbox[3] - bbox[1]
    if w <= 0 or h <= 0:
        return 0
    layer = Image.new("L", (w + 4, h + 4), 0)
    ImageDraw.Draw(layer).text((2 - bbox[0], 2 - bbox[1]), text, font=font, fill=255, stroke_width=stroke, stroke_fill=255)
    nw = max(1, int(round(layer.width * squeeze)))
    layer = layer.resize((nw, layer.height), Image.LANCZOS)
    ink = Image.new("RGB", layer.size, fill)
    canvas.paste(ink, (int(x), int(y)), layer)
    return nw - 4


def render_plate(rng: np.random.Generator, d: dict, height: int = 120) -> Image.Image:
    """The flat plate, `height` pixels high, as RGB."""
    big, small = fonts()
    W, H = int(round(d["aspect"] * height)), height
    bg, ink = _colours(rng, d)
    img = Image.new("RGB", (W, H), bg)
    draw = ImageDraw.Draw(img)
    # Gradient and printed texture on the background.
    if d.get("bg") == "us" or rng.random() < 0.25:
        arr = np.asarray(img, np.float32)
        grad = np.linspace(rng.uniform(-35, 10), rng.uniform(-10, 35), H if rng.random() < 0.5 else W)
        arr += grad[:, None, None] if grad.shape[0] == H else grad[None, :, None]
        if d.get("bg") == "us" and rng.random() < 0.5:  # a faint picture behind the characters
            yy, xx = np.mgrid[0:H, 0:W]
            wave = np.sin(xx / rng.uniform(8, 40) + rng.uniform(0, 6)) * np.cos(yy / rng.uniform(8, 40))
            arr += wave[..., None] * rng.uniform(5, 30) * rng.uniform(-1, 1, 3)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(img)
    left = int(0.04 * H)
    right = W - int(0.04 * H)
    band = d.get("band")
    if band in ("eu", "kz", "rus", "flag", "kz_old") and d["lines"] == 1:
        bw = int(H * rng.uniform(0.32, 0.42))
        if band == "eu":
            draw.rectangle([0, 0, bw, H], fill=(20, 50, 150))
            f = _font(str(rng.choice(small)), max(6, int(H * 0.28)))
            draw.text((bw * 0.5, H * 0.78), d.get("band_text", "EU"), font=f, fill=(240, 240, 240), anchor="mm")
            for k in range(12):  # ring of stars
                a = k * math.pi / 6
                cx, cy = bw * 0.5 + math.cos(a) * bw * 0.25, H * 0.33 + math.sin(a) * bw * 0.25
                draw.ellipse([cx - 1.5, cy - 1.5, cx + 1.5, cy + 1.5], fill=(240, 210, 40))
        elif band in ("kz", "flag"):
            draw.rectangle([left, left, left + bw, H - left], fill=(60, 170, 210) if band == "kz" else (200, 40, 40))
            draw.ellipse([left + bw * 0.25, H * 0.15, left + bw * 0.75, H * 0.15 + bw * 0.5], fill=(240, 200, 40))
            f = _font(str(rng.choice(small)), max(6, int(H * 0.22)))
            draw.text((left + bw * 0.5, H * 0.8), "KZ" if band == "kz" else str(rng.choice(["KG", "UZ"])), font=f, fill=(20, 20, 20), anchor="mm")
        else:
            bw = 0
        left += bw + int(H * 0.06)
    if band == "mercosur":
        bh = int(H * 0.22)
        draw.rectangle([0, 0, W, bh], fill=(20, 50, 150))
        f = _font(str(rng.choice(small)), max(6, int(bh * 0.7)))
        draw.text((W / 2, bh / 2), d.get("top") or "MERCOSUR", font=f, fill=(240, 240, 240), anchor="mm")
    region = d.get("region_box")
    if region and d["lines"] == 1:
        rw = int(H * (0.75 if len(region) == 2 else 1.0))
        draw.line([right - rw, left * 0 + int(0.08 * H), right - rw, H - int(0.08 * H)], fill=ink, width=max(1, H // 40))
        rf = _font(big[int(rng.integers(0, len(big)))][0], int(H * 0.5))
        _draw_group(draw, right - rw + int(0.1 * H), H * 0.15, region, rf, ink, 0, rw * 0.8 / max(1, rf.getlength(region)) if rf.getlength(region) > rw * 0.8 else 1.0, img)
        if band == "rus":
            sf = _font(str(rng.choice(small)), max(6, int(H * 0.16)))
            draw.text((right - rw / 2, H * 0.82), "RUS", font=sf, fill=ink, anchor="mm")
        right -= rw + int(0.06 * H)
    top_text, bottom_text = (d.get("top") if band != "mercosur" else None), d.get("bottom")
    y0, y1 = int(H * 0.1), int(H * 0.9)
    if band == "mercosur":
        y0 = int(H * 0.26)
    if top_text:
        f = _font(str(rng.choice(small)), max(6, int(H * rng.uniform(0.13, 0.2))))
        draw.text((W / 2 + rng.normal(0, W * 0.03), H * 0.1), top_text, font=f, fill=ink if rng.random() < 0.6 else tuple(int(v) for v in rng.integers(0, 200, 3)), anchor="mm")
        y0 = int(H * 0.2)
    if bottom_text:
        f = _font(str(rng.choice(small)), max(6, int(H * rng.uniform(0.1, 0.15))))
        draw.text((W / 2, H * 0.9), bottom_text, font=f, fill=ink, anchor="mm")
        y1 = int(H * 0.82)
    font_path, narrow = big[int(rng.integers(0, len(big)))]
    stroke = int(rng.choice([0, 0, 0, 1, 2])) if height >= 100 else 0
    rows = d.get("rows") or [" ".join(d["groups"])]
    n = len(rows)
    gap = int(H * 0.05) if n > 1 else 0
    row_h = (y1 - y0 - gap * (n - 1)) / n
    for r, row in enumerate(rows):
        groups = row.split(" ")
        char_h = row_h * rng.uniform(0.78, 0.95)
        f = _font(font_path, max(8, int(char_h * 1.3)))
        # Scale so that cap height is char_h.
        cap = f.getbbox("H")[3] - f.getbbox("H")[1]
        f = _font(font_path, max(8, int(f.size * char_h / max(1, cap))))
        space = char_h * rng.uniform(0.15, 0.45)
        widths = [f.getlength(g) + 2 * stroke for g in groups]
        natural = sum(widths) + space * (len(groups) - 1)
        avail = right - left
        squeeze = min(rng.uniform(0.85, 1.1) / narrow * 0.9, avail * rng.uniform(0.82, 0.97) / max(1.0, natural))
        squeeze = max(0.35, squeeze)
        total = natural * squeeze
        x = left + (avail - total) / 2 + rng.normal(0, avail * 0.01)
        y = y0 + r * (row_h + gap) + (row_h - char_h) / 2
        for g, w in zip(groups, widths):
            _draw_group(draw, x, y, g, f, ink, stroke, squeeze, img)
            x += w * squeeze + space * squeeze
    # Border, screws.
    if rng.random() < 0.8:
        bw = max(1, int(H * rng.uniform(0.015, 0.04)))
        draw.rounded_rectangle([bw // 2, bw // 2, W - 1 - bw // 2, H - 1 - bw // 2], radius=int(H * 0.06), outline=ink, width=bw)
    if rng.random() < 0.5:
        for sx in (0.2, 0.8) if W / H > 2.5 else (0.25, 0.75):
            r = H * 0.035
            draw.ellipse([W * sx - r, H * 0.07 - r, W * sx + r, H * 0.07 + r], fill=tuple(int(v * 0.6) for v in bg))
    return img


def _background(rng, w: int, h: int) -> np.ndarray:
    """A car body around the plate: a colour, a gradient, bumper lines,
    noise."""
    base = rng.uniform(0, 255, 3) if rng.random() < 0.7 else np.full(3, rng.uniform(0, 255))
    arr = np.ones((h, w, 3), np.float32) * base
    arr += np.linspace(rng.uniform(-40, 0), rng.uniform(0, 40), h)[:, None, None]
    for _ in range(int(rng.integers(0, 4))):
        y = int(rng.integers(0, h))
        arr[y : y + int(rng.integers(1, max(2, h // 10))), :] *= rng.uniform(0.3, 1.5)
    arr += rng.normal(0, rng.uniform(1, 10), arr.shape)
    return np.clip(arr, 0, 255)


def _spoil(rng, img: Image.Image, plate_h: float) -> Image.Image:
    """Camera effects on the whole patch."""
    arr = np.asarray(img, np.float32)
    u = rng.random()
    if u < 0.12:  # night, infrared: grey, plate glows, the rest dark
        g = arr @ np.array([0.299, 0.587, 0.114], np.float32)
        g = np.clip((g - g.mean()) * rng.uniform(1.2, 2.2) + rng.uniform(90, 150), 0, 255)
        arr = np.repeat(g[..., None], 3, 2)
    elif u < 0.3:  # low light: dark, noisy, warm
        arr = arr * rng.uniform(0.3, 0.7) * np.array([1.0, rng.uniform(0.8, 1.0), rng.uniform(0.6, 0.95)], np.float32)
        arr += rng.normal(0, rng.uniform(3, 12), arr.shape)
    elif u < 0.42:  # colour cast (cheap sensors, tinted windscreens)
        arr = arr * rng.uniform(0.6, 1.3, 3)[None, None, :].astype(np.float32)
    if rng.random() < 0.12:  # glare: a bright blob
        h, w = arr.shape[:2]
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = rng.uniform(0.1, 0.5) * max(h, w)
        yy, xx = np.mgrid[0:h, 0:w]
        blob = np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)))
        arr += blob[..., None] * rng.uniform(60, 200)
    if rng.random() < 0.15:  # shadow across the plate
        h, w = arr.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w]
        a, b = rng.normal(0, 1, 2)
        side = (a * (xx - w / 2) + b * (yy - h / 2)) > 0
        arr = np.where(side[..., None], arr * rng.uniform(0.35, 0.7), arr)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if rng.random() < 0.15:  # motion blur, horizontal
        k = int(rng.integers(2, max(3, int(plate_h * 0.25)) + 1))
        arr = np.asarray(img, np.float32)
        img = Image.fromarray(np.clip(sum(np.roll(arr, s, axis=1) for s in range(k)) / k, 0, 255).astype(np.uint8))
    return img


def make_item(rng: np.random.Generator) -> dict:
    """One synthetic plate in a patch, as `plate_data.cut_patches` returns
    items: uint8 RGB patch, box x, y, w, h and corners in patch pixels,
    canonical text, layout, slot label."""
    d = _design(rng)
    plate = render_plate(rng, d, height=int(rng.integers(70, 140)))
    pw, ph = plate.size
    # Occlusion and dirt on the flat plate.
    draw = ImageDraw.Draw(plate)
    if rng.random() < 0.08:  # a tow bar or bracket across part of it
        x = rng.uniform(0, pw)
        draw.rectangle([x, rng.uniform(0.5, 1.0) * ph, x + rng.uniform(0.05, 0.15) * pw, ph], fill=tuple(int(v) for v in rng.integers(0, 80, 3)))
    if rng.random() < 0.25:
        for _ in range(int(rng.integers(3, 30))):
            x, y, r = rng.uniform(0, pw), rng.uniform(0, ph), rng.uniform(1, ph * 0.06)
            c = tuple(int(v) for v in rng.integers(60, 140, 3))
            draw.ellipse([x - r, y - r, x + r, y + r], fill=c)
    # Into a patch with the plate in the middle, widened by part of its
    # size (the crops later take at most 0.3 of the width and 0.5 of the
    # height around the box).
    W, H = int(pw * 1.7), int(ph * 2.4)
    back = Image.fromarray(_background(rng, W, H).astype(np.uint8))
    src = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32)
    # Perspective: corners moved, a small rotation, a vertical squeeze
    # (a camera above the road looks down at the plate).
    jitter = rng.normal(0, 1, (4, 2)) * np.array([0.04 * pw, 0.06 * ph]) * rng.uniform(0.3, 1.5)
    squash = rng.uniform(0.75, 1.05)
    angle = rng.normal(0, 0.06)
    c, s = math.cos(angle), math.sin(angle)
    centred = (src - [pw / 2, ph / 2]) * [1, squash] + jitter
    rot = centred @ np.array([[c, s], [-s, c]], np.float32)
    dst = (rot + [W / 2, H / 2]).astype(np.float32)
    # PIL maps output points to input points: patch to plate.
    inv = _perspective_coeffs(dst.tolist(), src.tolist())
    warped = plate.convert("RGBA").transform((W, H), Image.PERSPECTIVE, tuple(inv), Image.BILINEAR)
    back.paste(warped, (0, 0), warped)
    # The plate shrunk to a random height (most real reads are of plates
    # 15 to 45 pixels high), then camera effects.
    target_h = float(np.clip(rng.lognormal(math.log(28), 0.4), 12, 90)) * (1.5 if d["lines"] == 2 else 1.0)
    plate_h = float(dst[:, 1].max() - dst[:, 1].min())
    # Above 44 pixels nothing more reaches the reader's 48-pixel input.
    f = min(1.0, min(target_h, 44.0) / plate_h)
    img = back
    if f < 1.0:
        img = img.resize((max(4, int(W * f)), max(4, int(H * f))), Image.BOX if rng.random() < 0.5 else Image.BILINEAR)
    fx, fy = img.width / W, img.height / H
    img = _spoil(rng, img, plate_h * fy)
    corners = dst * np.array([fx, fy], np.float32)
    x0, y0 = corners.min(0)
    x1, y1 = corners.max(0)
    return {
        "patch": np.asarray(img.convert("RGB")),
        "box": np.array([x0, y0, x1 - x0, y1 - y0], np.float32),
        "corners": corners,
        "text": d["text"],
        "layout": "two_line" if d["lines"] == 2 else "single_line",
        "label": encode_text(d["text"]),
    }


def make_items(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [make_item(rng) for _ in range(n)]


if __name__ == "__main__":  # a contact sheet to look at: python plate_synth.py out.png
    import sys

    from plate_data import augment_view

    rng = np.random.default_rng(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    sheet = Image.new("L", (6 * 164, 10 * 52), 0)
    texts = []
    for k in range(60):
        item = make_item(rng)
        view = augment_view(item, (160, 48), rng, train=True)
        sheet.paste(Image.fromarray((view * 255).astype(np.uint8)), ((k % 6) * 164, (k // 6) * 52))
        texts.append(item["text"])
    sheet.save(sys.argv[1])
    for r in range(10):
        print("  ".join(f"{t:>10}" for t in texts[r * 6 : r * 6 + 6]))
