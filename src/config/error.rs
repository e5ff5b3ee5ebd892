//! Why a configuration was refused. Every message names the setting and where
//! its value came from; validation problems also say why and how to fix them.

use std::fmt;
use std::path::PathBuf;

/// Where a configuration value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
    Env(String),
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("the built-in defaults"),
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::Flag(name) => write!(f, "flag --{name}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "configuration file {path} (from {origin}) does not exist. Fix: pass an existing file, or create one with `sealcache init --dir DIR`"
    )]
    FileNotFound { path: PathBuf, origin: Origin },

    #[error("cannot read configuration file {path}: {source}")]
    FileRead {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("configuration file {path} is not valid YAML: {message}")]
    Yaml { path: PathBuf, message: String },

    #[error("configuration file {path} must be a YAML mapping of settings at the top level")]
    NotAMapping { path: PathBuf },

    #[error(
        "unknown configuration key `{key}` in {origin}{}: a misspelt setting is an error so that it is never silently ignored. Fix: {}",
        suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(),
        unknown_key_fix(origin)
    )]
    UnknownKey {
        key: String,
        origin: Origin,
        suggestion: Option<String>,
    },

    #[error(
        "environment variables SEALCACHE_ENV ({env}) and SEALCACHE_PROFILE ({profile}) disagree on the profile. Fix: unset one of them"
    )]
    ProfileConflict { env: String, profile: String },

    #[error("{key} (from {origin}) has an invalid value: {message}")]
    InvalidValue {
        key: String,
        origin: Origin,
        message: String,
    },

    #[error("cannot determine the current directory: {0}")]
    CurrentDir(std::io::Error),

    /// Everything validation found wrong; each entry is a complete sentence
    /// naming the setting, why it is unsafe and how to fix it.
    #[error("{}", render_problems(.0))]
    Invalid(Vec<String>),
}

impl ConfigError {
    /// The individual problems (one for every error but [`ConfigError::Invalid`]).
    pub fn problems(&self) -> Vec<String> {
        match self {
            ConfigError::Invalid(problems) => problems.clone(),
            other => vec![other.to_string()],
        }
    }
}

fn unknown_key_fix(origin: &Origin) -> &'static str {
    match origin {
        Origin::Env(_) => {
            "rename or unset the variable (nested keys are joined by `__`, e.g. SEALCACHE_UPSTREAM__POOL_SIZE; lists such as auth.users are set whole, e.g. SEALCACHE_AUTH__USERS='[{name: app, password_env: APP_PW}]')"
        }
        _ => "correct or remove it (docs/sealcache.example.yaml lists every key)",
    }
}

fn render_problems(problems: &[String]) -> String {
    match problems {
        [one] => one.clone(),
        many => {
            let mut out = format!("{} problems in the configuration:", many.len());
            for p in many {
                out.push_str("\n  - ");
                out.push_str(p);
            }
            out
        }
    }
}
