//! The integration-test binary: one binary, one module per area, each driving
//! the real `sealcache` binary against real servers started by `support/`.

mod certs_init;
mod clients;
mod command_table;
mod encryption;
mod fail_fast;
mod harness;
mod isolation;
mod proxy;
mod support;
