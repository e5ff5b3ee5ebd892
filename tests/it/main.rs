//! The integration-test binary: one binary, one module per area, each driving
//! the real `sealcache` binary against real servers started by `support/`.

mod admin;
mod behaviour;
mod certs_init;
mod ciphertext_order;
mod clients;
mod command_table;
mod dynamodb_proxy;
mod dynamodb_store;
mod emulation;
mod encryption;
mod fail_fast;
mod floods;
mod fuzz_regressions;
mod hardening;
mod harness;
mod introspection;
mod isolation;
mod memory_store;
mod proxy;
mod pubsub;
mod resilience;
mod routes;
mod support;
mod unauthenticated;
