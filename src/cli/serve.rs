//! `sealcache serve`: load and validate the configuration, then run the proxy.

use std::process::ExitCode;

use super::ConfigArgs;

pub fn run(_args: ConfigArgs) -> ExitCode {
    ExitCode::FAILURE
}
