//! Configuration in stages: defaults < YAML file < `SEALCACHE_*` environment <
//! command-line flags, then validation. Holding a [`Config`] means it passed.
//!
//! - `defaults` — every default as a named const;
//! - `raw` — the file's shape (`deny_unknown_fields`), also the key schema;
//! - `layers` — reads and merges the layers, remembering each value's origin;
//! - `validate` — raw → [`Config`], with the fail-fast safety checks;
//! - `render` — the effective configuration with secrets redacted.
//!
//! `check-config` and `serve` both go through [`load`], so they refuse exactly
//! the same configurations, before anything listens.

pub mod defaults;
pub mod dynamodb;
mod error;
mod layers;
mod model;
mod raw;
mod render;
mod upstream_url;
mod validate;

pub use error::{ConfigError, Origin};
pub use layers::DEFAULT_CONFIG_FILE;
pub use model::*;
pub use render::{REDACTED, render_redacted};
pub use validate::{check_argon2_hash, password_strength};

use crate::cli::ConfigArgs;

/// Environment variables are `SEALCACHE_` + the key path joined by `__`.
pub const ENV_PREFIX: &str = "SEALCACHE_";
/// Reserved: names the configuration file.
pub const ENV_CONFIG: &str = "SEALCACHE_CONFIG";
/// Reserved: the profile (`development` or `production`).
pub const ENV_PROFILE: &str = "SEALCACHE_ENV";
/// Reserved: the master key itself (base64); wins over `encryption.master_key_file`.
pub const ENV_MASTER_KEY: &str = "SEALCACHE_MASTER_KEY";

/// Where environment variables come from; tests pass a map instead of the process env.
pub trait EnvSource {
    fn var(&self, name: &str) -> Option<String>;
    /// Every variable, for discovering `SEALCACHE_*` overrides.
    fn vars(&self) -> Vec<(String, String)>;
}

/// The process environment.
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn vars(&self) -> Vec<(String, String)> {
        // vars_os: a non-UTF-8 variable elsewhere in the environment must not panic.
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect()
    }
}

/// An environment from a map: for tests, and for callers that want to pin it.
impl EnvSource for std::collections::HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
    fn vars(&self) -> Vec<(String, String)> {
        self.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// Loads, layers and validates the configuration.
pub fn load(args: &ConfigArgs, env: &dyn EnvSource) -> Result<Config, ConfigError> {
    let layered = layers::layer(args, env)?;
    validate::build(&layered, env).map_err(ConfigError::Invalid)
}

/// Things that are allowed but deserve a warning at every start (`serve` logs
/// them once logging is up; `check-config` prints them to stderr).
pub fn warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for backend in &config.backends {
        let BackendSettings::Redis(upstream) = &backend.settings else {
            continue;
        };
        let name = &backend.name;
        match &upstream.target {
            UpstreamTarget::PlainTcp { host, port } => out.push(format!(
                "backend '{name}': redis://{host}:{port} is PLAINTEXT (allow_plaintext_upstream: true): values are encrypted, but keys, commands and the upstream password cross the connection unencrypted; use rediss:// outside local development"
            )),
            UpstreamTarget::Unix { path } => out.push(format!(
                "backend '{name}': unix://{} is a PLAINTEXT socket (allow_plaintext_upstream: true): keys, commands and the upstream password are readable by anyone who can read the socket's traffic on this host",
                path.display()
            )),
            UpstreamTarget::Tls { .. } => {
                if !upstream.verify_certificates {
                    out.push(format!(
                        "backend '{name}': verify_certificates is false: the upstream's certificate is NOT checked, so anyone able to intercept the connection can impersonate Redis (development only)"
                    ));
                }
            }
        }
    }
    if let Some(addr) = config.admin.listen
        && !addr.ip().is_loopback()
    {
        out.push(format!(
            "admin.listen {addr} is not a loopback address: /healthz and /readyz answer anyone who can reach it, over plain HTTP without authentication"
        ));
    }
    out
}

#[cfg(test)]
mod tests;
