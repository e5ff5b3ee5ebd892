use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = sealcache::cli::Cli::parse();
    sealcache::cli::run(cli)
}
