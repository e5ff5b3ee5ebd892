//! `sealcache check-config`: validate and print the effective configuration
//! with every secret redacted. Exits 78 (EX_CONFIG) when it is invalid.

use std::process::ExitCode;

use super::ConfigArgs;
use crate::config;

pub fn run(args: ConfigArgs) -> ExitCode {
    let config = match super::load_config(&args) {
        Ok(config) => config,
        Err(code) => return code,
    };
    for warning in config::warnings(&config) {
        eprintln!("warning: {warning}");
    }
    print!("{}", config::render_redacted(&config));
    ExitCode::SUCCESS
}
