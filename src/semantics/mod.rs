//! Redis semantics over plaintext, apart from any I/O: what a command means
//! (pattern matching, orderings, number formats) as pure functions that the
//! value layer and every backend share.

pub mod emulated;
pub mod errors;
pub mod expiry;
pub mod geo;
pub mod glob;
pub mod long_double;
pub mod number;
pub mod range;
pub mod scan;
pub mod transaction;
pub mod zset;

/// Arguments from a command line written with spaces, for tests.
#[cfg(test)]
pub(crate) fn words(line: &str) -> Vec<bytes::Bytes> {
    line.split_whitespace()
        .map(|w| bytes::Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}
