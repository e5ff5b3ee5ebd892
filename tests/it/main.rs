//! The integration-test binary: each module drives the real `sealcache` binary
//! (and real servers) for one area.

mod certs_init;
mod fail_fast;
