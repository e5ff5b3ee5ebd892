//! Builds one settings tree from the layers — defaults < YAML file <
//! `SEALCACHE_*` environment < flags — remembering where every value came from
//! and refusing keys the schema does not have.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::dynamodb::RawDynamoBackend;
use super::error::{ConfigError, Origin};
use super::raw::{ROUTE_KEYS, RawConfig, RawMemoryBackend, USER_KEYS};
use super::{ENV_CONFIG, ENV_MASTER_KEY, ENV_PREFIX, ENV_PROFILE, EnvSource};
use crate::cli::ConfigArgs;

/// The file looked for in the current directory when no file is named.
pub const DEFAULT_CONFIG_FILE: &str = "sealcache.yaml";

/// The merged settings plus what validation needs to interpret them.
pub(super) struct Layered {
    pub raw: RawConfig,
    /// Origin of every leaf that a layer above the defaults set.
    origins: BTreeMap<String, Origin>,
    /// Directory that relative paths from the file (and defaults) resolve against.
    pub base_dir: PathBuf,
    /// Directory that relative paths from the environment and flags resolve against.
    pub cwd: PathBuf,
}

impl Layered {
    /// Where the value at `key` (dotted path) came from.
    pub fn origin(&self, key: &str) -> Origin {
        let mut key = key;
        loop {
            if let Some(origin) = self.origins.get(key) {
                return origin.clone();
            }
            match key.rfind('.') {
                Some(i) => key = &key[..i],
                None => return Origin::Default,
            }
        }
    }

    /// The keys under `section` that a layer above the defaults set.
    pub fn set_keys_under(&self, section: &str) -> Vec<String> {
        let prefix = format!("{section}.");
        self.origins
            .keys()
            .filter(|k| k.starts_with(&prefix) || *k == section)
            .cloned()
            .collect()
    }

    /// Resolves a path setting: relative paths from the file or the defaults are
    /// relative to the file's directory, those from the environment or a flag to
    /// the current directory (as a shell user expects).
    pub fn resolve(&self, key: &str, value: &str) -> PathBuf {
        let path = Path::new(value);
        if path.is_absolute() {
            return path.to_path_buf();
        }
        match self.origin(key) {
            Origin::Env(_) | Origin::Flag(_) => self.cwd.join(path),
            Origin::Default | Origin::File(_) => self.base_dir.join(path),
        }
    }
}

/// Reads and merges every layer, then deserializes the result.
pub(super) fn layer(args: &ConfigArgs, env: &dyn EnvSource) -> Result<Layered, ConfigError> {
    let cwd = std::env::current_dir().map_err(ConfigError::CurrentDir)?;
    let schema = serde_json::to_value(RawConfig::default()).expect("defaults serialize");
    let mut tree = schema.clone();
    let mut origins = BTreeMap::new();

    let file = find_file(args, env, &cwd)?;
    if let Some(path) = &file {
        let overlay = read_file(path)?;
        let origin = Origin::File(path.clone());
        check_known(&overlay, &schema, "", &origin, &schema)?;
        merge(&mut tree, overlay, "", &origin, &mut origins);
    }

    for (origin, path, value) in env_overrides(env, &schema)? {
        set(&mut tree, &path, value.clone());
        record(&value, &path.join("."), &origin, &mut origins);
    }

    for (flag, path, value) in flag_overrides(args) {
        let value = Value::String(value);
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        set(&mut tree, &path, value.clone());
        record(&value, &path.join("."), &Origin::Flag(flag), &mut origins);
    }

    let raw = deserialize(&tree, &schema, &origins)?;
    let base_dir = match &file {
        Some(path) => path.parent().map(Path::to_path_buf).unwrap_or(cwd.clone()),
        None => cwd.clone(),
    };
    Ok(Layered {
        raw,
        origins,
        base_dir,
        cwd,
    })
}

/// `--config`, else `SEALCACHE_CONFIG`, else `./sealcache.yaml` when it exists.
/// A file named explicitly must exist: a typo in a path must not silently fall
/// back to defaults.
fn find_file(
    args: &ConfigArgs,
    env: &dyn EnvSource,
    cwd: &Path,
) -> Result<Option<PathBuf>, ConfigError> {
    let named = match (&args.config, env.var(ENV_CONFIG).filter(|v| !v.is_empty())) {
        (Some(path), _) => Some((path.clone(), Origin::Flag("config"))),
        (None, Some(path)) => Some((PathBuf::from(path), Origin::Env(ENV_CONFIG.into()))),
        (None, None) => None,
    };
    match named {
        Some((path, origin)) => {
            let path = cwd.join(path);
            if !path.exists() {
                return Err(ConfigError::FileNotFound { path, origin });
            }
            Ok(Some(path))
        }
        None => {
            let path = cwd.join(DEFAULT_CONFIG_FILE);
            Ok(path.exists().then_some(path))
        }
    }
}

fn read_file(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::FileRead {
        path: path.to_path_buf(),
        source,
    })?;
    let value = parse_yaml(&text).map_err(|e| ConfigError::Yaml {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    match value {
        Value::Null => Ok(Value::Object(Map::new())),
        Value::Object(_) => Ok(value),
        _ => Err(ConfigError::NotAMapping {
            path: path.to_path_buf(),
        }),
    }
}

/// YAML 1.2 core scalars: `yes`/`no` stay text and `0660` stays "0660" (not 660).
/// Snippets are off because an error would echo file content, which may hold a secret.
pub(super) fn parse_yaml(text: &str) -> Result<Value, serde_saphyr::Error> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        with_snippet: false,
    };
    serde_saphyr::from_str_with_options(text, options)
}

/// `SEALCACHE_A__B=v` → (`a.b`, v). String settings take the value verbatim
/// (empty means null); other settings parse it as YAML, so numbers, booleans
/// and lists work.
type Override = (Origin, Vec<String>, Value);

fn env_overrides(env: &dyn EnvSource, schema: &Value) -> Result<Vec<Override>, ConfigError> {
    let mut vars: Vec<(String, String)> = env
        .vars()
        .into_iter()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX))
        .collect();
    vars.sort();

    // SEALCACHE_ENV is the documented profile switch; SEALCACHE_PROFILE is the
    // generic spelling of the `profile` key. Both may be set only if they agree.
    let get = |wanted: &str| {
        vars.iter()
            .find(|(n, _)| n == wanted)
            .map(|(_, v)| v.clone())
    };
    if let (Some(env), Some(profile)) = (get(ENV_PROFILE), get("SEALCACHE_PROFILE"))
        && env != profile
    {
        return Err(ConfigError::ProfileConflict { env, profile });
    }

    let mut out = Vec::new();
    for (name, value) in vars {
        if name == ENV_CONFIG || name == ENV_MASTER_KEY {
            continue;
        }
        let origin = Origin::Env(name.clone());
        let path: Vec<String> = if name == ENV_PROFILE {
            vec!["profile".into()]
        } else {
            name[ENV_PREFIX.len()..]
                .split("__")
                .map(|s| s.to_ascii_lowercase())
                .collect()
        };
        let backend_slot;
        let slot = if path.first().is_some_and(|p| p == "backends") && path.len() >= 2 {
            // A backend's settings depend on its type: any type's key goes here
            // (validation names the ones its type does not take).
            backend_slot = backend_schema();
            if path.len() == 2 {
                Some(&backend_slot)
            } else {
                lookup(&backend_slot, &path[2..])
            }
        } else {
            lookup(schema, &path)
        };
        let Some(slot) = slot else {
            let key = path.join(".");
            return Err(ConfigError::UnknownKey {
                suggestion: suggest(&key, schema),
                key,
                origin,
            });
        };
        let value = match slot {
            Value::String(_) | Value::Null if value.is_empty() => Value::Null,
            Value::String(_) | Value::Null => Value::String(value),
            _ => parse_yaml(&value).map_err(|e| ConfigError::InvalidValue {
                key: path.join("."),
                origin: origin.clone(),
                message: format!("not a valid YAML value ({e})"),
            })?,
        };
        out.push((origin, path, value));
    }
    Ok(out)
}

fn flag_overrides(args: &ConfigArgs) -> Vec<(&'static str, &'static [&'static str], String)> {
    let flags: [(&'static str, &'static [&'static str], Option<String>); 6] = [
        ("profile", &["profile"], args.profile.clone()),
        ("listen", &["listen", "tcp"], args.listen.clone()),
        (
            "unix-socket",
            &["listen", "unix"],
            args.unix_socket
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned()),
        ),
        ("upstream", &["upstream", "url"], args.upstream.clone()),
        (
            "log-format",
            &["logging", "format"],
            args.log_format.clone(),
        ),
        ("log-level", &["logging", "level"], args.log_level.clone()),
    ];
    flags
        .into_iter()
        .filter_map(|(flag, path, value)| value.map(|v| (flag, path, v)))
        .collect()
}

/// Refuses any key of `overlay` that the schema (the defaults tree) lacks.
fn check_known(
    overlay: &Value,
    schema: &Value,
    prefix: &str,
    origin: &Origin,
    root: &Value,
) -> Result<(), ConfigError> {
    let (Value::Object(map), Value::Object(known)) = (overlay, schema) else {
        return Ok(());
    };
    for (key, value) in map {
        let path = join(prefix, key);
        let Some(slot) = known.get(key) else {
            return Err(ConfigError::UnknownKey {
                suggestion: suggest(&path, root),
                key: path,
                origin: origin.clone(),
            });
        };
        if path == "backends" {
            // Each backend's keys depend on its type: validation checks them.
            continue;
        }
        if path == "routes"
            && let Value::Array(routes) = value
        {
            for route in routes {
                if let Value::Object(fields) = route
                    && let Some(bad) = fields.keys().find(|k| !ROUTE_KEYS.contains(&k.as_str()))
                {
                    return Err(ConfigError::UnknownKey {
                        key: format!("routes[].{bad}"),
                        origin: origin.clone(),
                        suggestion: closest(bad, ROUTE_KEYS.iter().copied())
                            .map(|k| format!("routes[].{k}")),
                    });
                }
            }
        }
        if path == "auth.users"
            && let Value::Array(users) = value
        {
            for user in users {
                if let Value::Object(fields) = user
                    && let Some(bad) = fields.keys().find(|k| !USER_KEYS.contains(&k.as_str()))
                {
                    return Err(ConfigError::UnknownKey {
                        key: format!("auth.users[].{bad}"),
                        origin: origin.clone(),
                        suggestion: closest(bad, USER_KEYS.iter().copied())
                            .map(|k| format!("auth.users[].{k}")),
                    });
                }
            }
        }
        check_known(value, slot, &path, origin, root)?;
    }
    Ok(())
}

/// Every key any type of backend takes, with a default of its type (so an
/// environment variable's text is read as the right kind of value).
fn backend_schema() -> Value {
    let mut schema =
        serde_json::to_value(RawConfig::default().upstream).expect("defaults serialize");
    let memory = serde_json::to_value(RawMemoryBackend::default()).expect("defaults serialize");
    let dynamodb = serde_json::to_value(RawDynamoBackend::default()).expect("defaults serialize");
    if let Value::Object(all) = &mut schema {
        for kind in [memory, dynamodb] {
            let Value::Object(keys) = kind else { continue };
            for (key, value) in keys {
                all.entry(key).or_insert(value);
            }
        }
        // Numbers whose default is null: their values parse as YAML, not text.
        for key in ["read_capacity", "write_capacity"] {
            all.insert(key.into(), Value::from(0));
        }
        all.insert("type".into(), Value::String(String::new()));
    }
    schema
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn lookup<'a>(schema: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut node = schema;
    for segment in path {
        node = node.as_object()?.get(segment)?;
    }
    Some(node)
}

/// Every dotted key of the schema.
fn known_keys(schema: &Value, prefix: &str, out: &mut Vec<String>) {
    if let Value::Object(map) = schema {
        for (key, value) in map {
            let path = join(prefix, key);
            known_keys(value, &path, out);
            out.push(path);
        }
    }
}

/// The known key a typo most likely meant: close in spelling, or the same last
/// segment under another section (`pool_size` → `upstream.pool_size`).
pub(super) fn suggest(key: &str, schema: &Value) -> Option<String> {
    let mut keys = Vec::new();
    known_keys(schema, "", &mut keys);
    let last = key.rsplit('.').next().unwrap_or(key);
    if let Some(same_leaf) = keys
        .iter()
        .find(|k| k.rsplit('.').next() == Some(last) && k.as_str() != key)
    {
        return Some(same_leaf.clone());
    }
    // `upstream_pool_size` from SEALCACHE_UPSTREAM_POOL_SIZE: a single `_` where `__` was meant.
    if let Some(dotted) = keys.iter().find(|k| k.replace('.', "_") == key) {
        return Some(dotted.clone());
    }
    closest(key, keys.iter().map(String::as_str)).map(str::to_string)
}

fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 5))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(row[j + 1])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// Deep-merges `overlay` into `base`, recording the origin of every leaf it sets.
fn merge(
    base: &mut Value,
    overlay: Value,
    prefix: &str,
    origin: &Origin,
    origins: &mut BTreeMap<String, Origin>,
) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                let path = join(prefix, &key);
                match base.get_mut(&key) {
                    Some(slot) => merge(slot, value, &path, origin, origins),
                    None => {
                        record(&value, &path, origin, origins);
                        base.insert(key, value);
                    }
                }
            }
        }
        // A section left empty (every key commented out) reads as null: no overrides.
        (Value::Object(_), Value::Null) => {}
        (base, overlay) => {
            record(&overlay, prefix, origin, origins);
            *base = overlay;
        }
    }
}

fn record(value: &Value, path: &str, origin: &Origin, origins: &mut BTreeMap<String, Origin>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                record(child, &join(path, key), origin, origins);
            }
        }
        _ => {
            origins.insert(path.to_string(), origin.clone());
        }
    }
}

fn set(tree: &mut Value, path: &[String], value: Value) {
    let mut node = tree;
    for segment in &path[..path.len() - 1] {
        node = node
            .as_object_mut()
            .expect("path checked against the schema")
            .entry(segment.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    let last = path.last().expect("non-empty path").clone();
    match (node.as_object_mut(), value) {
        (Some(map), Value::Object(overlay)) if map.get(&last).is_some_and(Value::is_object) => {
            // A whole section from one variable merges into the section.
            let slot = map.get_mut(&last).expect("checked");
            for (k, v) in overlay {
                slot.as_object_mut().expect("checked").insert(k, v);
            }
        }
        (Some(map), value) => {
            map.insert(last, value);
        }
        (None, _) => {}
    }
}

/// Deserializes the merged tree. On a type error, finds the first leaf that
/// alone makes the defaults fail, so the message names the key and its origin.
fn deserialize(
    tree: &Value,
    schema: &Value,
    origins: &BTreeMap<String, Origin>,
) -> Result<RawConfig, ConfigError> {
    let err = match serde_json::from_value::<RawConfig>(tree.clone()) {
        Ok(raw) => return Ok(raw),
        Err(err) => err,
    };
    for key in origins.keys() {
        let path: Vec<String> = key.split('.').map(str::to_string).collect();
        let Some(value) = lookup(tree, &path) else {
            continue;
        };
        let mut probe = schema.clone();
        set_exact(&mut probe, &path, value.clone());
        if let Err(e) = serde_json::from_value::<RawConfig>(probe) {
            return Err(ConfigError::InvalidValue {
                key: key.clone(),
                origin: origins[key].clone(),
                message: hide_values(&e.to_string()),
            });
        }
    }
    Err(ConfigError::InvalidValue {
        key: "configuration".into(),
        origin: Origin::Default,
        message: hide_values(&err.to_string()),
    })
}

fn set_exact(tree: &mut Value, path: &[String], value: Value) {
    let mut node = tree;
    for segment in path {
        let Some(next) = node.as_object_mut().and_then(|m| m.get_mut(segment)) else {
            return;
        };
        node = next;
    }
    *node = value;
}

/// serde quotes the offending string (`invalid type: string "…"`); the string
/// could be a secret put in the wrong place, so it is left out.
pub(super) fn hide_values(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(i) = rest.find("string \"") {
        out.push_str(&rest[..i + "string".len()]);
        let after = &rest[i + "string \"".len()..];
        match after.find('"') {
            Some(end) => rest = &after[end + 1..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
pub(super) fn schema() -> Value {
    serde_json::to_value(RawConfig::default()).expect("defaults serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let schema = schema();
        assert_eq!(
            suggest("upstream.pool_sise", &schema).as_deref(),
            Some("upstream.pool_size")
        );
        assert_eq!(
            suggest("pool_size", &schema).as_deref(),
            Some("upstream.pool_size")
        );
        assert_eq!(
            suggest("upstream_pool_size", &schema).as_deref(),
            Some("upstream.pool_size")
        );
        assert_eq!(suggest("zzzzzzzz", &schema), None);
    }

    #[test]
    fn hides_quoted_strings() {
        assert_eq!(
            hide_values(r#"invalid type: string "hunter2", expected usize"#),
            "invalid type: string, expected usize"
        );
    }

    #[test]
    fn yaml_keeps_octal_text_and_yes() {
        let v = parse_yaml("a: 0660\nb: no\nc: 1.3\n").unwrap();
        assert_eq!(v["a"], Value::String("0660".into()));
        assert_eq!(v["b"], Value::String("no".into()));
        assert!(v["c"].is_number());
    }
}
