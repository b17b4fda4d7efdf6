//! Shared vocabulary of safecity: licence plates and their rules.
//!
//! Both the edge and the server depend on this crate, so it stays free of
//! heavy dependencies.
//!
//! - [`normalize_plate`] turns what a camera or a person typed into the
//!   canonical form (`123ABC02`): upper-case Latin letters and digits, with
//!   Cyrillic look-alikes mapped to Latin.
//! - [`PlateFormat`] and [`parse_plate`] apply the Kazakhstan plate grammar
//!   (ST RK 986-2012 and the earlier format) and give the display form and
//!   region code; anything else is read as a foreign plate.
//! - [`plate_distance`] is the edit distance used for fuzzy search, where a
//!   swap between look-alike characters (`0`/`O`, `8`/`B`, ...) costs less
//!   than any other edit.
//! - [`PlatePattern`] is a query with `?` and `*` wildcards.
//! - [`Event`] is the event schema the edge sends and the server stores;
//!   [`EventId`] its ULID idempotency key.
//! - [`Backoff`]: the retry schedule every reconnect and redelivery uses.
//! - [`sync`]: the one policy for poisoned locks ([`sync::Locked`]).
//! - [`clock`]: now, and milliseconds since 1970 as UTC times.
//! - [`iou`] compares `x1, y1, x2, y2` boxes, for detectors and trackers.
//! - [`Picture`] is a decoded frame, packed RGB or the decoder's planar
//!   YUV 4:2:0, converted only where it is read.
//! - `tls` (feature `tls`): the TLS settings the edge and the server share,
//!   read from PEM files.

mod backoff;
pub mod clock;
mod distance;
mod event;
mod geometry;
mod pattern;
mod picture;
mod plate;
pub mod sync;
#[cfg(feature = "tls")]
pub mod tls;

pub use backoff::Backoff;
pub use distance::{plate_distance, LOOKALIKE_COST, LOOKALIKE_GROUPS};
pub use event::{
    AlarmInfo, Candidate, Event, EventError, EventId, EventKind, PlateInfo, StatusInfo,
    VehicleInfo, MAX_CANDIDATES, MAX_ID_TEXT, MAX_MESSAGE, MAX_SHORT_TEXT, MAX_YEAR, MIN_YEAR,
};
pub use geometry::iou;
pub use pattern::PlatePattern;
pub use picture::{Layout, OwnedPicture, Picture, Planes420, YuvMatrix, YuvToRgb};
pub use plate::{
    normalize_plate, parse_plate, region_name, ParsedPlate, PlateError, PlateFormat, KZ_REGIONS,
    MAX_PLATE_LEN,
};
