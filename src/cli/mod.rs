//! Command-line interface: one file per subcommand, parsed with clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub mod certs;
pub mod check_config;
pub mod hash_password;
pub mod health;
pub mod init;
pub mod serve;

/// Exit code for configuration errors (EX_CONFIG from sysexits.h).
pub const EXIT_CONFIG: u8 = 78;
/// Exit code for bad command-line usage or other startup failures.
pub const EXIT_FAILURE: u8 = 1;

#[derive(Debug, Parser)]
#[command(
    name = "sealcache",
    version,
    about = "Encrypting, TLS-only Redis proxy"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy.
    Serve(ConfigArgs),
    /// Validate the configuration and print it with secrets redacted.
    CheckConfig(ConfigArgs),
    /// Check each backend's connectivity and latency, and a running proxy's /readyz; non-zero exit when one is down.
    Health(health::HealthArgs),
    /// Create certificates, a client password, a master key and a config file.
    Init(init::InitArgs),
    /// Certificate tooling.
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// Print an argon2id hash of a password read from stdin, for `auth.users[].password_hash`.
    HashPassword,
}

/// Flags shared by every command that loads the configuration. They are the
/// top layer: defaults < YAML file < SEALCACHE_* environment < these flags.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigArgs {
    /// YAML configuration file (else $SEALCACHE_CONFIG, else ./sealcache.yaml if present).
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Security profile: development or production (else $SEALCACHE_ENV).
    #[arg(long)]
    pub profile: Option<String>,
    /// TLS listen address, e.g. 127.0.0.1:6380.
    #[arg(long)]
    pub listen: Option<String>,
    /// Unix socket path to listen on.
    #[arg(long)]
    pub unix_socket: Option<PathBuf>,
    /// Upstream URL, e.g. rediss://127.0.0.1:6379.
    #[arg(long)]
    pub upstream: Option<String>,
    /// Log format: text or json.
    #[arg(long)]
    pub log_format: Option<String>,
    /// Log filter, e.g. info or sealcache=debug.
    #[arg(long)]
    pub log_level: Option<String>,
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> std::process::ExitCode {
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::CheckConfig(args) => check_config::run(args),
        Command::Health(args) => health::run(args),
        Command::Init(args) => init::run(args),
        Command::Certs(cmd) => certs::run(cmd),
        Command::HashPassword => hash_password::run(),
    }
}

/// Builds an async runtime, or prints why not and returns [`EXIT_FAILURE`].
pub fn build_runtime(
    builder: &mut tokio::runtime::Builder,
) -> Result<tokio::runtime::Runtime, std::process::ExitCode> {
    builder.enable_all().build().map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        std::process::ExitCode::from(EXIT_FAILURE)
    })
}

/// Loads and validates the configuration from the process environment, or
/// prints `error: …` to stderr and returns exit code [`EXIT_CONFIG`]. `serve`
/// and `check-config` both start with this, so they refuse identically.
pub fn load_config(args: &ConfigArgs) -> Result<crate::config::Config, std::process::ExitCode> {
    crate::config::load(args, &crate::config::ProcessEnv).map_err(|e| {
        eprintln!("error: {e}");
        std::process::ExitCode::from(EXIT_CONFIG)
    })
}
