//! Parses `upstream.url`: `rediss://[user[:password]@]host[:port][/db]`,
//! `redis://host:port[/db]` and `unix:///path[?db=N]`. Whether a plaintext
//! scheme is allowed is decided by validation, not here.

use std::net::IpAddr;
use std::path::PathBuf;

use secrecy::SecretString;
use url::{Host, Url};

use super::defaults::UPSTREAM_DEFAULT_PORT;

#[derive(Debug)]
pub(super) enum Endpoint {
    Tls { host: String, port: u16 },
    PlainTcp { host: String, port: u16 },
    Unix { path: PathBuf },
}

#[derive(Debug)]
pub(super) struct ParsedUrl {
    pub endpoint: Endpoint,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub db: u32,
}

/// Why a URL was refused. Never contains the URL itself: it may hold a password.
#[derive(Debug, thiserror::Error)]
pub(super) enum UrlError {
    #[error("is not a valid URL ({0})")]
    Syntax(url::ParseError),
    #[error(
        "uses the unsupported scheme `{0}:` (expected rediss://, or redis:// or unix:// with allow_plaintext_upstream)"
    )]
    Scheme(String),
    #[error("has no host")]
    NoHost,
    #[error("has a database number that is not a non-negative integer")]
    Db,
    #[error("has a query or fragment sealcache does not understand (only unix:// URLs take ?db=N)")]
    Extra,
    #[error("names no socket path")]
    NoPath,
    #[error("has a user name or password that is not valid UTF-8 after percent-decoding")]
    Encoding,
}

pub(super) fn parse(text: &str) -> Result<ParsedUrl, UrlError> {
    let url = Url::parse(text).map_err(UrlError::Syntax)?;
    match url.scheme() {
        "rediss" | "redis" => {
            if url.query().is_some() || url.fragment().is_some() {
                return Err(UrlError::Extra);
            }
            let host = match url.host().ok_or(UrlError::NoHost)? {
                Host::Domain("") => return Err(UrlError::NoHost),
                Host::Domain(d) => d.to_string(),
                Host::Ipv4(ip) => ip.to_string(),
                Host::Ipv6(ip) => ip.to_string(),
            };
            let port = url.port().unwrap_or(UPSTREAM_DEFAULT_PORT);
            let db = match url.path().trim_start_matches('/') {
                "" => 0,
                db => db.parse().map_err(|_| UrlError::Db)?,
            };
            let username = match url.username() {
                "" => None,
                user => Some(decode(user)?),
            };
            let password = url
                .password()
                .map(|p| decode(p).map(SecretString::from))
                .transpose()?;
            let endpoint = if url.scheme() == "rediss" {
                Endpoint::Tls { host, port }
            } else {
                Endpoint::PlainTcp { host, port }
            };
            Ok(ParsedUrl {
                endpoint,
                username,
                password,
                db,
            })
        }
        "unix" => {
            if url.fragment().is_some() || url.password().is_some() {
                return Err(UrlError::Extra);
            }
            let mut db = 0;
            for (key, value) in url.query_pairs() {
                match key.as_ref() {
                    "db" => db = value.parse().map_err(|_| UrlError::Db)?,
                    _ => return Err(UrlError::Extra),
                }
            }
            let path = url.to_file_path().map_err(|_| UrlError::NoPath)?;
            if path.as_os_str().len() <= 1 {
                return Err(UrlError::NoPath);
            }
            Ok(ParsedUrl {
                endpoint: Endpoint::Unix { path },
                username: None,
                password: None,
                db,
            })
        }
        other => Err(UrlError::Scheme(other.to_string())),
    }
}

fn decode(s: &str) -> Result<String, UrlError> {
    percent_decode(s).ok_or(UrlError::Encoding)
}

/// `url` leaves userinfo percent-encoded; Redis passwords often contain `@` or `:`.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Loopback for the plaintext exception: 127.0.0.0/8, ::1 (also IPv4-mapped) and `localhost`.
pub(super) fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn rediss_with_userinfo_and_db() {
        let p = parse("rediss://app:p%40ss%3Aw@redis.internal:6390/3").unwrap();
        assert!(
            matches!(p.endpoint, Endpoint::Tls { ref host, port: 6390 } if host == "redis.internal")
        );
        assert_eq!(p.username.as_deref(), Some("app"));
        assert_eq!(p.password.unwrap().expose_secret(), "p@ss:w");
        assert_eq!(p.db, 3);
    }

    #[test]
    fn defaults_port_and_db_and_reads_ipv6() {
        let p = parse("rediss://[::1]").unwrap();
        assert!(matches!(p.endpoint, Endpoint::Tls { ref host, port: 6379 } if host == "::1"));
        assert_eq!(p.db, 0);
        assert!(p.password.is_none());
        let p = parse("rediss://:secret@h:1").unwrap();
        assert!(p.username.is_none());
        assert_eq!(p.password.unwrap().expose_secret(), "secret");
    }

    #[test]
    fn plaintext_and_unix() {
        assert!(matches!(
            parse("redis://127.0.0.1:6379").unwrap().endpoint,
            Endpoint::PlainTcp { .. }
        ));
        let p = parse("unix:///run/redis.sock?db=2").unwrap();
        assert!(
            matches!(p.endpoint, Endpoint::Unix { ref path } if path == &PathBuf::from("/run/redis.sock"))
        );
        assert_eq!(p.db, 2);
    }

    #[test]
    fn rejects() {
        assert!(matches!(parse("http://h:1"), Err(UrlError::Scheme(_))));
        assert!(matches!(parse("rediss://h:1/x"), Err(UrlError::Db)));
        assert!(matches!(parse("rediss://h:1/0?x=1"), Err(UrlError::Extra)));
        assert!(matches!(parse("unix:///"), Err(UrlError::NoPath)));
        assert!(parse("not a url").is_err());
        // The error never carries the URL (it may contain a password).
        let e = parse("ftp://u:hunter2@h").unwrap_err().to_string();
        assert!(!e.contains("hunter2"));
    }

    #[test]
    fn loopback() {
        for h in [
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "localhost",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["10.0.0.1", "redis", "::2", "0.0.0.0"] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
