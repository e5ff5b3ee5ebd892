//! Redis semantics over plaintext, apart from any I/O: what a command means
//! (pattern matching, orderings, number formats) as pure functions that the
//! value layer and every backend share.

pub mod errors;
pub mod expiry;
pub mod glob;
pub mod number;
pub mod range;
