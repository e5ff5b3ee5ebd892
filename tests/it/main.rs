//! The integration-test binary: one binary, one module per area, sharing the
//! server harnesses in `support/`.

mod harness;
mod support;
