//! Value encryption: the envelope format, the associated data that binds a
//! value to where it lives, randomized AES-256-GCM for values, deterministic
//! AES-256-GCM-SIV for set members, and the [`Sealer`] that the proxy calls.
//!
//! docs/envelope.md specifies the format byte by byte, with test vectors
//! checked by `vectors`' tests. Nothing here panics on untrusted input: every
//! failure to open is a typed [`OpenError`].

mod context;
mod deterministic;
pub mod envelope;
mod randomized;
mod sealer;
#[cfg(test)]
mod vectors;

pub use context::{MemberContext, MemberKind, ValueContext, ValueKind};
pub use envelope::{OVERHEAD, OpenError, SealError, Version, is_envelope};
pub use sealer::{KeyUsage, NONCE_WARN_THRESHOLD, Sealer};
