//! # airlock-audit
//!
//! (crate docs are written when the crate's public API settles)

pub mod checkpoint;
pub mod merkle;
pub mod sink;
