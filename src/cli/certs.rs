//! `sealcache certs generate`: a CA, a server and a client certificate (rcgen).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Write ca.crt/ca.key, server.crt/server.key and client.crt/client.key.
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Output directory (created 0700).
    #[arg(long)]
    pub out: PathBuf,
    /// Subject alternative names for the server certificate, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "localhost,127.0.0.1")]
    pub hosts: Vec<String>,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

pub fn run(_cmd: CertsCommand) -> ExitCode {
    ExitCode::FAILURE
}
