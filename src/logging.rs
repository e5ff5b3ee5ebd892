//! Tracing setup: human-readable by default, JSON with `--log-format json`.
//! Events carry names, addresses and sizes — never passwords, keys or values.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LoggingConfig};

/// Installs the global subscriber (stderr). `RUST_LOG` overrides the level.
pub fn init(config: &LoggingConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Longest client-supplied text written to a log, in bytes; the rest is cut
/// and its length noted.
pub const MAX_LOGGED_BYTES: usize = 128;

/// Client- or upstream-supplied bytes (user names, key names, channel names,
/// error texts from the upstream) as they may appear in a log line: control
/// characters, escape sequences, quotes and backslashes are escaped (`\n`,
/// `\x1b`…) and the text is cut at [`MAX_LOGGED_BYTES`], so nothing a client
/// sends can start a forged log line or flood the log.
pub struct Untrusted<'a>(pub &'a [u8]);

impl std::fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = &self.0[..self.0.len().min(MAX_LOGGED_BYTES)];
        for chunk in shown.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '\n' => f.write_str("\\n")?,
                    '\r' => f.write_str("\\r")?,
                    '\t' => f.write_str("\\t")?,
                    '\\' => f.write_str("\\\\")?,
                    '"' => f.write_str("\\\"")?,
                    c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
                    c => write!(f, "{c}")?,
                }
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        if self.0.len() > shown.len() {
            write!(f, "…(+{} bytes)", self.0.len() - shown.len())?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Untrusted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_long_text_is_cut() {
        let forged = b"evil\n2026-01-01T00:00:00Z  INFO fake line\x1b[31m\"\\";
        let shown = Untrusted(forged).to_string();
        assert!(!shown.contains('\n') && !shown.contains('\x1b'), "{shown}");
        assert_eq!(
            shown,
            "evil\\n2026-01-01T00:00:00Z  INFO fake line\\u{1b}[31m\\\"\\\\"
        );
        assert_eq!(Untrusted(b"a\xffb").to_string(), "a\\xffb");
        let long = vec![b'x'; 1 << 20];
        let shown = Untrusted(&long).to_string();
        assert!(shown.len() < 200, "{}", shown.len());
        assert!(shown.ends_with(&format!("…(+{} bytes)", (1 << 20) - MAX_LOGGED_BYTES)));
    }
}
