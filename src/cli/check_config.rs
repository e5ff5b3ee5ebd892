//! `sealcache check-config`: validate and print the effective configuration.

use std::process::ExitCode;

use super::ConfigArgs;

pub fn run(_args: ConfigArgs) -> ExitCode {
    ExitCode::FAILURE
}
