use std::process::ExitCode;

use clap::Parser;

/// mimalloc: the proxy allocates and frees many short-lived buffers per request
/// (envelopes, argument lists), where glibc's malloc measured markedly slower.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = sealcache::cli::Cli::parse();
    sealcache::cli::run(cli)
}
