//! Plate font. (Being written.)
