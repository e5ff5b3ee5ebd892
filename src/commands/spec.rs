//! The shape of one row of the command table: how a command is routed to the
//! upstream and what sealcache must do to its values.

use super::keys::Keys;

/// Where a command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// On the client's multiplexed, pipelined pool connection.
    Shared,
    /// Answered by sealcache from session state (AUTH, HELLO, SELECT, CLIENT SETNAME…).
    Local,
    /// MULTI/EXEC/DISCARD/WATCH/UNWATCH: pins the client to a dedicated connection
    /// until the transaction or watch ends.
    Transaction,
    /// May block the connection: runs on a dedicated connection for its duration.
    Blocking,
    /// Blocks only when a `BLOCK` argument is present (XREAD, XREADGROUP).
    BlockingWithOption,
    /// Enters or changes Pub/Sub subscriptions: pins a dedicated connection.
    Subscribe,
    /// Has subcommands; the subcommand's row decides.
    Container,
}

/// What sealcache does to a command's values. Every command has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Keys and metadata only: forwarded unchanged.
    Pass,
    /// Carries values: `ValueRule` says which arguments and reply parts are values.
    Encrypt(ValueRule),
    /// Cannot run on ciphertext or on the shared upstream: sealcache does it itself.
    Emulate(Emulation),
    /// Cannot be made correct on encrypted data; the reason is shown to the client.
    Reject(&'static str),
    /// Reconfigures or wipes the upstream: rejected unless allowed in configuration.
    Admin,
}

/// Which arguments and reply parts of an encrypting command are values.
/// Interpreted by the value-encryption layer (`crate::values`); one variant
/// per argument/reply shape. "Value" means randomized AES-256-GCM bound to
/// the key (and hash field / stream field); "member" means deterministic
/// AES-256-GCM-SIV bound to the namespace only (set, sorted-set, geo and
/// HyperLogLog members, so equality keeps working across keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueRule {
    /// SET key value [… GET]: value at 2; with GET the reply is key 1's old value.
    StringSet,
    /// A string value at this argument (SETNX 2, SETEX 3, PSETEX 3); reply is not a value.
    StringValueAt(u8),
    /// GETSET key value: value at 2, reply is the old value.
    StringSwap,
    /// GET/GETDEL/GETEX key: the reply is key 1's value.
    StringGet,
    /// MGET key…: reply element i is the value of key i+1.
    MGet,
    /// MSET/MSETNX key value …: each value bound to the key before it.
    MSet,
    /// HSET/HMSET/HSETNX key field value …: values bound to key and field.
    HashSet,
    /// HGET key field: reply is that field's value.
    HashGet,
    /// HMGET key field…: reply element i is the value of field i+2.
    HashMGet,
    /// HGETALL key: reply is a field → value map.
    HashGetAll,
    /// HVALS key: sent upstream as HGETALL (values are bound to their field) and answered with the values.
    HashVals,
    /// HRANDFIELD key [count [WITHVALUES]]: with WITHVALUES, field/value pairs.
    HashRandField,
    /// HSCAN key cursor …: reply [cursor, [field, value, …]].
    HashScan,
    /// LPUSH/RPUSH/LPUSHX/RPUSHX key value…: list values from 2.
    ListPush,
    /// LSET key index value: list value at 3.
    ListSet,
    /// LPOP/RPOP/LRANGE/LINDEX/LMOVE/RPOPLPUSH/BLMOVE/BRPOPLPUSH: the reply is a list value or an array of them.
    ListReply,
    /// BLPOP/BRPOP: reply [key, value].
    ListKeyedPop,
    /// LMPOP/BLMPOP: reply [key, [value…]].
    ListMultiPop,
    /// Every argument from this index is a member (SADD 2, SREM 2, SISMEMBER 2, ZREM 2, ZSCORE 2, PFADD 2…).
    MembersFrom(u8),
    /// One member at this argument (SMOVE 3, ZINCRBY 3).
    MemberAt(u8),
    /// GEODIST key member member [unit]: members at 2 and 3.
    GeoDist,
    /// The reply is a member, or an array whose elements are members or arrays
    /// starting with a member ([member, score], GEO WITHCOORD …).
    MemberReply,
    /// Members in a reply and, after the listed option word, in an argument
    /// (GEOSEARCH/GEOSEARCHSTORE FROMMEMBER, GEORADIUSBYMEMBER key member).
    GeoSearch,
    /// SSCAN key cursor …: reply [cursor, [member…]].
    SetScan,
    /// ZADD key [options] score member …: members after the options.
    ZAdd,
    /// ZRANGESTORE dst src min max …: no values (ranks and scores work on
    /// ciphertext); BYLEX is refused, it would compare encrypted members.
    RangeStore,
    /// ZSCAN key cursor …: reply [cursor, [member, score, …]].
    ZScan,
    /// BZPOPMIN/BZPOPMAX: reply [key, member, score].
    ZKeyedPop,
    /// ZMPOP/BZMPOP: reply [key, [[member, score]…]].
    ZMultiPop,
    /// GEOADD key [options] longitude latitude member …: members after the options.
    GeoAdd,
    /// XADD key [options] id field value …: values bound to key and field.
    XAdd,
    /// XRANGE/XREVRANGE/XCLAIM: reply is an array of [id, [field, value…]] entries of key 1.
    XEntries,
    /// XREAD/XREADGROUP: reply maps each stream key to its entries.
    XRead,
    /// XAUTOCLAIM: reply [next id, entries, deleted ids].
    XAutoClaim,
    /// XINFO STREAM: entries inside the info map.
    XInfoStream,
    /// PUBLISH/SPUBLISH channel message: message bound to the channel.
    Publish,
}

/// Commands sealcache answers or performs itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emulation {
    /// Session and connection commands answered from session state.
    Session,
    /// INCR/DECR/INCRBY/DECRBY: read, add, write back under WATCH.
    IncrBy,
    /// INCRBYFLOAT.
    IncrByFloat,
    /// HINCRBY.
    HashIncrBy,
    /// HINCRBYFLOAT.
    HashIncrByFloat,
    Append,
    Strlen,
    /// GETRANGE and its alias SUBSTR.
    GetRange,
    SetRange,
    HashStrlen,
    /// RENAME/RENAMENX: values re-encrypted for the new key name, TTL kept.
    Rename,
    /// COPY: as RENAME, the source kept.
    Copy,
    /// ZRANK/ZREVRANK: members of equal score rank by plaintext, which the
    /// upstream cannot compare.
    Rank,
}

/// Redis's legacy key specification (`COMMAND`'s first/last/step): positions
/// of the keys among the arguments (0 is the command name), `last` < 0
/// counting from the end. It misses keys of movable-key commands; the key
/// specifications in [`Keys`] are exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPositions {
    pub first: i16,
    pub last: i16,
    pub step: i16,
}

#[derive(Debug, Clone, Copy)]
pub struct CommandSpec {
    /// Upper case; subcommands as `CONTAINER|SUB` (as `COMMAND` names them).
    pub name: &'static str,
    /// Redis arity: positive is exact, negative is a minimum; counts the name
    /// (and for subcommands, the container name too).
    pub arity: i16,
    pub legacy_keys: KeyPositions,
    /// Key positions depend on other arguments (Redis's `movablekeys`).
    pub movable_keys: bool,
    /// Which arguments are keys, as Redis 7 finds them: see [`crate::commands::keys`].
    pub keys: Keys,
    pub dispatch: Dispatch,
    pub policy: Policy,
    /// RESP3 null maps to RESP2's null *array* (`*-1`), not the null bulk string.
    pub null_array: bool,
}

impl CommandSpec {
    /// Whether `argc` arguments (name included) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let arity = self.arity as isize;
        if arity >= 0 {
            argc as isize == arity
        } else {
            argc as isize >= -arity
        }
    }
}
