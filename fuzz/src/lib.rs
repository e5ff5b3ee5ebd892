//! Fuzz targets for sealcache's decoders. [`targets`] holds the checks; the
//! binaries in `fuzz_targets/` feed them AFL++'s inputs, and the main crate's
//! `tests/it/fuzz_regressions.rs` includes the same file to replay `regressions/`.
#![forbid(unsafe_code)]

pub mod targets;
