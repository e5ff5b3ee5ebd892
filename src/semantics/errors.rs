//! Redis's own error replies, word for word (redis-server 7.0's `shared.*`
//! objects and the messages its commands build), for every store that
//! answers in Redis's name.

pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const SYNTAX: &str = "ERR syntax error";
pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub const NOT_FLOAT: &str = "ERR value is not a valid float";
pub const NO_SUCH_KEY: &str = "ERR no such key";
pub const INDEX_OUT_OF_RANGE: &str = "ERR index out of range";
pub const MUST_BE_POSITIVE: &str = "ERR value is out of range, must be positive";
pub const DB_OUT_OF_RANGE: &str = "ERR DB index is out of range";
pub const INVALID_CURSOR: &str = "ERR invalid cursor";
pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
pub const SAME_OBJECT: &str = "ERR source and destination objects are the same";
pub const TIMEOUT_NOT_FLOAT: &str = "ERR timeout is not a float or out of range";
pub const TIMEOUT_NEGATIVE: &str = "ERR timeout is negative";
pub const MIN_MAX_NOT_FLOAT: &str = "ERR min or max is not a float";
pub const MIN_MAX_NOT_STRING: &str = "ERR min or max not valid string range item";

/// `wrong number of arguments for '<name>' command`, with the command's
/// lower-case full name (`pubsub|channels` for a subcommand).
pub fn wrong_arity(name: &str) -> String {
    format!(
        "ERR wrong number of arguments for '{}' command",
        name.to_ascii_lowercase()
    )
}

/// `invalid expire time in '<command>' command`.
pub fn invalid_expire(command: &str) -> String {
    format!(
        "ERR invalid expire time in '{}' command",
        command.to_ascii_lowercase()
    )
}
