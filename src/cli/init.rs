//! `sealcache init`: certificates, a client password, a master key and a config file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory to create everything in.
    #[arg(long)]
    pub dir: PathBuf,
    /// Upstream Redis URL (rediss://HOST:PORT).
    #[arg(long)]
    pub upstream: Option<String>,
    /// development or production.
    #[arg(long, default_value = "development")]
    pub profile: String,
    /// Extra SANs for the server certificate, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "localhost,127.0.0.1")]
    pub hosts: Vec<String>,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

pub fn run(_args: InitArgs) -> ExitCode {
    ExitCode::FAILURE
}
