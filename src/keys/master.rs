//! The master key: 32 random bytes, standard base64, from `SEALCACHE_MASTER_KEY`
//! or a 0600 key file; the environment wins when both are set.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretBox};
use zeroize::Zeroizing;

/// The environment variable that holds the base64 master key.
pub const MASTER_KEY_ENV: &str = "SEALCACHE_MASTER_KEY";

/// A key file is one base64 line; anything much larger is not a key file and
/// is refused before it is read into memory.
const MAX_KEY_FILE_LEN: u64 = 1024;

/// Where a master key came from; names the source in errors and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// The `SEALCACHE_MASTER_KEY` environment variable.
    Env,
    /// A key file.
    File(PathBuf),
}

impl fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyOrigin::Env => write!(f, "{MASTER_KEY_ENV}"),
            KeyOrigin::File(path) => write!(f, "key file {}", path.display()),
        }
    }
}

/// Why no usable master key could be loaded. Messages name the source and the
/// fix, never a byte of the key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "no master key configured: set {MASTER_KEY_ENV} or encryption.master_key_file \
         (`sealcache init` creates one)"
    )]
    Missing,
    #[error("{origin} is empty: it must hold the standard base64 of 32 random bytes")]
    Empty { origin: KeyOrigin },
    // The base64 decoder's own error names the offending byte: that would be a
    // byte of the key, so it is deliberately not carried here.
    #[error(
        "{origin} is not valid standard base64: it must hold the base64 of 32 random bytes \
         (e.g. `openssl rand -base64 32`)"
    )]
    NotBase64 { origin: KeyOrigin },
    #[error(
        "{origin} decodes to {len} bytes: a master key is exactly 32 bytes (44 base64 characters)"
    )]
    WrongLength { origin: KeyOrigin, len: usize },
    #[error(
        "key file {} is accessible by group or others (mode {mode:04o}): run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("key file {} is not a regular file", path.display())]
    NotAFile { path: PathBuf },
    #[error("key file {} is too large ({len} bytes) to be a base64 master key", path.display())]
    FileTooLarge { path: PathBuf, len: u64 },
    #[error("cannot read key file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write key file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    #[error("key id {0} is already in the keyring")]
    DuplicateKeyId(super::KeyId),
    #[error("key id {0} is not in the keyring")]
    UnknownKeyId(super::KeyId),
}

/// The root secret every data key is derived from. Boxed so moves never copy
/// the bytes; wiped on drop.
pub struct MasterKey(SecretBox<[u8; MasterKey::LEN]>);

impl MasterKey {
    pub const LEN: usize = 32;

    /// Loads the master key: `env(MASTER_KEY_ENV)` first, else `key_file`.
    ///
    /// `env` is the environment lookup (tests pass a closure over a map, so no
    /// test touches the process environment).
    pub fn load(
        env: impl FnOnce(&str) -> Option<String>,
        key_file: Option<&Path>,
    ) -> Result<(MasterKey, KeyOrigin), KeyError> {
        if let Some(value) = env(MASTER_KEY_ENV) {
            let value = Zeroizing::new(value);
            return Ok((
                MasterKey::decode(value.as_bytes(), KeyOrigin::Env)?,
                KeyOrigin::Env,
            ));
        }
        match key_file {
            Some(path) => Ok((
                MasterKey::from_file(path)?,
                KeyOrigin::File(path.to_path_buf()),
            )),
            None => Err(KeyError::Missing),
        }
    }

    /// Parses the standard base64 of exactly 32 bytes.
    pub fn from_base64(encoded: &str) -> Result<MasterKey, KeyError> {
        MasterKey::decode(encoded.as_bytes(), KeyOrigin::Env)
    }

    /// Reads a key file: the base64 key plus an optional trailing newline.
    /// Refused when group or others may read or write it.
    pub fn from_file(path: &Path) -> Result<MasterKey, KeyError> {
        let read_err = |source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(read_err)?;
        // Check the opened file, not the path, so a swap between check and read
        // cannot slip a different file in.
        let meta = file.metadata().map_err(read_err)?;
        if !meta.is_file() {
            return Err(KeyError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        check_permissions(path, &meta)?;
        if meta.len() > MAX_KEY_FILE_LEN {
            return Err(KeyError::FileTooLarge {
                path: path.to_path_buf(),
                len: meta.len(),
            });
        }
        // Pre-sized so the buffer never reallocates and leaves unwiped copies.
        let mut content = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_LEN as usize + 1));
        file.by_ref()
            .take(MAX_KEY_FILE_LEN + 1)
            .read_to_end(&mut content)
            .map_err(read_err)?;
        let origin = KeyOrigin::File(path.to_path_buf());
        let mut text: &[u8] = &content;
        if let Some(rest) = text.strip_suffix(b"\n") {
            text = rest.strip_suffix(b"\r").unwrap_or(rest);
        }
        MasterKey::decode(text, origin)
    }

    /// Wraps raw key bytes (tests, and key sources that yield raw bytes).
    pub fn from_bytes(bytes: &[u8; MasterKey::LEN]) -> MasterKey {
        MasterKey(SecretBox::init_with_mut(|k: &mut [u8; MasterKey::LEN]| {
            k.copy_from_slice(bytes)
        }))
    }

    /// A fresh key from the operating system's CSPRNG (for `sealcache init`).
    pub fn generate() -> Result<MasterKey, KeyError> {
        use rand::TryRngCore as _;
        let mut failure = None;
        let key = MasterKey(SecretBox::init_with_mut(|k: &mut [u8; MasterKey::LEN]| {
            if let Err(e) = rand::rngs::OsRng.try_fill_bytes(k) {
                failure = Some(e.to_string());
            }
        }));
        match failure {
            Some(e) => Err(KeyError::Random(e)),
            None => Ok(key),
        }
    }

    /// The key as standard base64, the format of the env variable and key file.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.expose_secret()))
    }

    /// Writes a new key file (base64 and a newline) created with mode 0600;
    /// never overwrites an existing file.
    pub fn write_file(&self, path: &Path) -> Result<(), KeyError> {
        use std::io::Write as _;
        let write_err = |source| KeyError::Write {
            path: path.to_path_buf(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(write_err)?;
        let mut line = self.to_base64();
        line.push('\n');
        file.write_all(line.as_bytes()).map_err(write_err)?;
        file.sync_all().map_err(write_err)
    }

    pub(crate) fn expose(&self) -> &[u8; MasterKey::LEN] {
        self.0.expose_secret()
    }

    fn decode(encoded: &[u8], origin: KeyOrigin) -> Result<MasterKey, KeyError> {
        if encoded.is_empty() {
            return Err(KeyError::Empty { origin });
        }
        // Decode into a zeroizing buffer large enough to report the real length
        // of a wrong-sized key instead of a generic "too long".
        let mut decoded = Zeroizing::new(vec![0u8; base64::decoded_len_estimate(encoded.len())]);
        let len =
            STANDARD
                .decode_slice(encoded, &mut decoded)
                .map_err(|_| KeyError::NotBase64 {
                    origin: origin.clone(),
                })?;
        let bytes: &[u8; MasterKey::LEN] = decoded
            .get(..len)
            .and_then(|d| d.try_into().ok())
            .ok_or(KeyError::WrongLength { origin, len })?;
        Ok(MasterKey::from_bytes(bytes))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

#[cfg(unix)]
fn check_permissions(path: &Path, meta: &std::fs::Metadata) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), KeyError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    const KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn counting() -> [u8; 32] {
        std::array::from_fn(|i| i as u8)
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn key_file(content: &[u8], mode: u32) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        (dir, path)
    }

    #[test]
    fn parses_base64_of_32_bytes() {
        let key = MasterKey::from_base64(KEY_B64).unwrap();
        assert_eq!(key.expose(), &counting());
        assert_eq!(key.to_base64().as_str(), KEY_B64);
    }

    #[test]
    fn rejects_bad_base64_without_echoing_it() {
        let bad = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8*";
        let err = MasterKey::from_base64(bad).unwrap_err();
        assert!(matches!(err, KeyError::NotBase64 { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(MASTER_KEY_ENV), "{msg}");
        assert!(!msg.contains("AAEC") && !msg.contains('*'), "{msg}");
        assert!(!format!("{err:?}").contains("AAEC"));
    }

    #[test]
    fn rejects_wrong_lengths() {
        for len in [1usize, 16, 31, 33, 64] {
            let encoded = STANDARD.encode(vec![7u8; len]);
            match MasterKey::from_base64(&encoded) {
                Err(KeyError::WrongLength { len: got, .. }) => assert_eq!(got, len),
                other => panic!("{len}: {other:?}"),
            }
        }
        assert!(matches!(
            MasterKey::from_base64(""),
            Err(KeyError::Empty { .. })
        ));
        // Unpadded and URL-safe forms are a different format: refuse, do not guess.
        assert!(MasterKey::from_base64(KEY_B64.trim_end_matches('=')).is_err());
        assert!(MasterKey::from_base64(" AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").is_err());
    }

    #[test]
    fn env_wins_over_file() {
        let (_dir, path) = key_file(STANDARD.encode([9u8; 32]).as_bytes(), 0o600);
        let (key, origin) = MasterKey::load(
            |name| (name == MASTER_KEY_ENV).then(|| KEY_B64.to_string()),
            Some(&path),
        )
        .unwrap();
        assert_eq!(origin, KeyOrigin::Env);
        assert_eq!(key.expose(), &counting());
        let (key, origin) = MasterKey::load(no_env, Some(&path)).unwrap();
        assert_eq!(origin, KeyOrigin::File(path.clone()));
        assert_eq!(key.expose(), &[9u8; 32]);
    }

    #[test]
    fn missing_key_is_an_error() {
        let err = MasterKey::load(no_env, None).unwrap_err();
        assert!(matches!(err, KeyError::Missing));
        assert!(err.to_string().contains("sealcache init"));
    }

    #[test]
    fn malformed_env_value_does_not_fall_back_to_the_file() {
        let (_dir, path) = key_file(KEY_B64.as_bytes(), 0o600);
        let err = MasterKey::load(|_| Some("not a key".into()), Some(&path)).unwrap_err();
        assert!(matches!(
            err,
            KeyError::NotBase64 {
                origin: KeyOrigin::Env
            }
        ));
    }

    #[test]
    fn key_file_with_and_without_newline() {
        for content in [
            KEY_B64.to_string(),
            format!("{KEY_B64}\n"),
            format!("{KEY_B64}\r\n"),
        ] {
            let (_dir, path) = key_file(content.as_bytes(), 0o600);
            let key = MasterKey::from_file(&path).unwrap();
            assert_eq!(key.expose(), &counting());
        }
        let (_dir, path) = key_file(format!("{KEY_B64}\n\n").as_bytes(), 0o400);
        let err = MasterKey::from_file(&path).unwrap_err();
        assert!(matches!(err, KeyError::NotBase64 { .. }), "{err:?}");
        assert!(err.to_string().contains(&path.display().to_string()));
    }

    #[test]
    fn key_file_readable_by_others_is_refused_with_the_fix() {
        for mode in [0o644, 0o640, 0o604, 0o660, 0o606] {
            let (_dir, path) = key_file(KEY_B64.as_bytes(), mode);
            let err = MasterKey::from_file(&path).unwrap_err();
            assert!(
                matches!(err, KeyError::Permissions { mode: m, .. } if m == mode),
                "{err:?}"
            );
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("chmod 600 {}", path.display())),
                "{msg}"
            );
            assert!(msg.contains(&format!("{mode:04o}")), "{msg}");
        }
    }

    #[test]
    fn key_file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.key");
        let err = MasterKey::load(no_env, Some(&path)).unwrap_err();
        assert!(matches!(err, KeyError::Read { .. }));
        assert!(err.to_string().contains("absent.key"));

        let err = MasterKey::from_file(dir.path()).unwrap_err();
        assert!(matches!(err, KeyError::NotAFile { .. }), "{err:?}");

        let (_dir, path) = key_file(&[b'A'; 4096], 0o600);
        assert!(matches!(
            MasterKey::from_file(&path),
            Err(KeyError::FileTooLarge { len: 4096, .. })
        ));

        let (_dir, path) = key_file(STANDARD.encode([1u8; 16]).as_bytes(), 0o600);
        let err = MasterKey::from_file(&path).unwrap_err();
        assert!(matches!(err, KeyError::WrongLength { len: 16, .. }));
        assert!(err.to_string().contains("master.key"));
    }

    #[test]
    fn write_file_round_trips_with_mode_0600_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.key");
        let key = MasterKey::generate().unwrap();
        key.write_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(MasterKey::from_file(&path).unwrap().expose(), key.expose());
        assert!(matches!(key.write_file(&path), Err(KeyError::Write { .. })));
    }

    #[test]
    fn generated_keys_differ() {
        let a = MasterKey::generate().unwrap();
        let b = MasterKey::generate().unwrap();
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn debug_is_redacted() {
        let key = MasterKey::from_base64(KEY_B64).unwrap();
        assert_eq!(format!("{key:?}"), "MasterKey(<redacted>)");
    }
}
