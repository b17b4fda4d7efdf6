//! Canonical plate text and the Kazakhstan plate grammar.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest canonical plate we accept. Real plates are 10 characters or less;
/// the margin leaves room for foreign formats.
pub const MAX_PLATE_LEN: usize = 12;

/// Kazakhstan region codes (ST RK 986-2012), in code order.
pub const KZ_REGIONS: [(&str, &str); 20] = [
    ("01", "Astana"),
    ("02", "Almaty"),
    ("03", "Akmola"),
    ("04", "Aktobe"),
    ("05", "Almaty Region"),
    ("06", "Atyrau"),
    ("07", "West Kazakhstan"),
    ("08", "Zhambyl"),
    ("09", "Karaganda"),
    ("10", "Kostanay"),
    ("11", "Kyzylorda"),
    ("12", "Mangystau"),
    ("13", "Turkestan"),
    ("14", "Pavlodar"),
    ("15", "North Kazakhstan"),
    ("16", "East Kazakhstan"),
    ("17", "Shymkent"),
    ("18", "Abai"),
    ("19", "Jetisu"),
    ("20", "Ulytau"),
];

/// The name of a Kazakhstan region code such as `"02"`.
pub fn region_name(code: &str) -> Option<&'static str> {
    KZ_REGIONS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, name)| *name)
}

/// Why a text is not a plate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlateError {
    #[error("plate is empty")]
    Empty,
    #[error("plate {text:?} is longer than {MAX_PLATE_LEN} characters")]
    TooLong { text: String },
    #[error("plate {text:?} has character {ch:?}; use letters, digits, spaces or dashes")]
    BadCharacter { text: String, ch: char },
}

/// The plate formats the system knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlateFormat {
    /// `123 ABC 02`: three digits, three letters, region code.
    KzPrivate,
    /// `123 AB 02`: three digits, two letters, region code.
    KzOrganisation,
    /// `A 123 BCD`: the format used before 2012, region letter first.
    KzLegacy,
    /// Anything else: other countries, read as free text.
    Foreign,
}

impl PlateFormat {
    /// All formats, Kazakhstan ones first.
    pub const ALL: [PlateFormat; 4] = [
        PlateFormat::KzPrivate,
        PlateFormat::KzOrganisation,
        PlateFormat::KzLegacy,
        PlateFormat::Foreign,
    ];

    /// The name used in events and configuration (`kz_private`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            PlateFormat::KzPrivate => "kz_private",
            PlateFormat::KzOrganisation => "kz_organisation",
            PlateFormat::KzLegacy => "kz_legacy",
            PlateFormat::Foreign => "foreign",
        }
    }

    /// Whether this is a Kazakhstan format (the grammar prior favours these).
    pub fn is_kazakh(self) -> bool {
        !matches!(self, PlateFormat::Foreign)
    }
}

impl fmt::Display for PlateFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PlateFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PlateFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = PlateFormat::ALL.iter().map(|f| f.as_str()).collect();
                format!(
                    "unknown plate format {s:?}; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// A plate text checked against the grammar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedPlate {
    /// Canonical form, `123ABC02`.
    pub text: String,
    /// Form for people, `123 ABC 02`.
    pub display: String,
    pub format: PlateFormat,
    /// Kazakhstan region code (`"02"`) for the current formats.
    pub region: Option<String>,
}

/// Maps one character to its canonical form: `Some(c)` for a letter or digit,
/// `None` for a separator that is dropped, `Err` otherwise.
fn canonical_char(ch: char) -> Result<Option<char>, char> {
    let mapped = match ch {
        '0'..='9' | 'A'..='Z' => ch,
        'a'..='z' => ch.to_ascii_uppercase(),
        ' ' | '-' | '.' | '\t' | '_' | '·' => return Ok(None),
        // Cyrillic look-alikes, upper and lower case.
        'А' | 'а' => 'A',
        'В' | 'в' => 'B',
        'Е' | 'е' => 'E',
        'К' | 'к' => 'K',
        'М' | 'м' => 'M',
        'Н' | 'н' => 'H',
        'О' | 'о' => 'O',
        'Р' | 'р' => 'P',
        'С' | 'с' => 'C',
        'Т' | 'т' => 'T',
        'У' | 'у' => 'Y',
        'Х' | 'х' => 'X',
        other => return Err(other),
    };
    Ok(Some(mapped))
}

/// Canonical plate text: upper-case Latin letters and digits, no separators.
///
/// ```
/// assert_eq!(safecity_core::normalize_plate("123 abc-02").unwrap(), "123ABC02");
/// assert_eq!(safecity_core::normalize_plate("А 123 ВС").unwrap(), "A123BC");
/// ```
pub fn normalize_plate(text: &str) -> Result<String, PlateError> {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match canonical_char(ch) {
            Ok(Some(c)) => out.push(c),
            Ok(None) => {}
            Err(ch) => {
                return Err(PlateError::BadCharacter {
                    text: text.to_owned(),
                    ch,
                })
            }
        }
    }
    if out.is_empty() {
        return Err(PlateError::Empty);
    }
    if out.len() > MAX_PLATE_LEN {
        return Err(PlateError::TooLong {
            text: text.to_owned(),
        });
    }
    Ok(out)
}

/// Character classes of a canonical plate, `D` for digit and `L` for letter.
fn shape(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_digit() { 'D' } else { 'L' })
        .collect()
}

/// Normalises `text` and classifies it by the Kazakhstan grammar.
///
/// A text that fits no Kazakhstan format, or fits one with an unknown region
/// code, is a [`PlateFormat::Foreign`] plate.
pub fn parse_plate(text: &str) -> Result<ParsedPlate, PlateError> {
    let text = normalize_plate(text)?;
    let s = &text;
    let parsed = match shape(s).as_str() {
        "DDDLLLDD" if region_name(&s[6..]).is_some() => ParsedPlate {
            display: format!("{} {} {}", &s[..3], &s[3..6], &s[6..]),
            format: PlateFormat::KzPrivate,
            region: Some(s[6..].to_owned()),
            text: text.clone(),
        },
        "DDDLLDD" if region_name(&s[5..]).is_some() => ParsedPlate {
            display: format!("{} {} {}", &s[..3], &s[3..5], &s[5..]),
            format: PlateFormat::KzOrganisation,
            region: Some(s[5..].to_owned()),
            text: text.clone(),
        },
        "LDDDLLL" | "LDDDLL" => ParsedPlate {
            display: format!("{} {} {}", &s[..1], &s[1..4], &s[4..]),
            format: PlateFormat::KzLegacy,
            region: None,
            text: text.clone(),
        },
        _ => ParsedPlate {
            display: text.clone(),
            format: PlateFormat::Foreign,
            region: None,
            text: text.clone(),
        },
    };
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_separators_case_and_cyrillic() {
        assert_eq!(normalize_plate(" 123 abc-02 ").unwrap(), "123ABC02");
        assert_eq!(normalize_plate("777 КХМ 17").unwrap(), "777KXM17");
        assert_eq!(normalize_plate("ОРСТУ").unwrap(), "OPCTY");
    }

    #[test]
    fn rejects_bad_text_with_the_offending_character() {
        assert_eq!(normalize_plate(" - "), Err(PlateError::Empty));
        let err = normalize_plate("12#AB").unwrap_err();
        assert!(err.to_string().contains("'#'"), "{err}");
        assert!(matches!(
            normalize_plate("1234567890ABC"),
            Err(PlateError::TooLong { .. })
        ));
        // Cyrillic letters without a Latin look-alike are not plate characters.
        assert!(normalize_plate("123ЖЖЖ02").is_err());
    }

    #[test]
    fn parses_kazakh_formats() {
        let p = parse_plate("123abc02").unwrap();
        assert_eq!(p.format, PlateFormat::KzPrivate);
        assert_eq!(p.display, "123 ABC 02");
        assert_eq!(p.region.as_deref(), Some("02"));

        let p = parse_plate("456 KM 17").unwrap();
        assert_eq!(p.format, PlateFormat::KzOrganisation);
        assert_eq!(p.display, "456 KM 17");

        let p = parse_plate("A 123 BCD").unwrap();
        assert_eq!(p.format, PlateFormat::KzLegacy);
        assert_eq!(p.display, "A 123 BCD");
        assert_eq!(p.region, None);
    }

    #[test]
    fn unknown_region_or_shape_is_foreign() {
        assert_eq!(
            parse_plate("123ABC21").unwrap().format,
            PlateFormat::Foreign
        );
        assert_eq!(
            parse_plate("123ABC00").unwrap().format,
            PlateFormat::Foreign
        );
        assert_eq!(
            parse_plate("A123BC77").unwrap().format,
            PlateFormat::Foreign
        );
        assert_eq!(
            parse_plate("01KG123ABC").unwrap().format,
            PlateFormat::Foreign
        );
    }

    #[test]
    fn every_region_code_parses() {
        for (code, name) in KZ_REGIONS {
            let p = parse_plate(&format!("001AAA{code}")).unwrap();
            assert_eq!(p.region.as_deref(), Some(code), "{name}");
        }
    }

    #[test]
    fn format_names_round_trip() {
        for f in PlateFormat::ALL {
            assert_eq!(f.as_str().parse::<PlateFormat>().unwrap(), f);
            assert_eq!(serde_json::to_string(&f).unwrap(), format!("\"{f}\""));
        }
        let err = "kz_square".parse::<PlateFormat>().unwrap_err();
        assert!(err.contains("kz_private"), "{err}");
    }
}
