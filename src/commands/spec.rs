//! The shape of one row of the command table: how a command is routed to the
//! upstream and what sealcache must do to its values.

use super::keys::Keys;
use crate::backend::capability::Capability;
pub use crate::semantics::geo::GeoSyntax;
pub use crate::semantics::zset::{Direction, RangeKind, RangeSyntax};

/// Where a command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// On the client's multiplexed, pipelined pool connection.
    Shared,
    /// Answered by sealcache from session state (AUTH, HELLO, SELECT, CLIENT SETNAME…).
    Local(Local),
    /// MULTI/EXEC/DISCARD/WATCH/UNWATCH: pins the client to a dedicated connection
    /// until the transaction or watch ends.
    Transaction(Transaction),
    /// May block the connection: runs on a dedicated connection for its duration.
    Blocking,
    /// Blocks only when a `BLOCK` argument is present (XREAD, XREADGROUP).
    BlockingWithOption,
    /// Enters or changes Pub/Sub subscriptions on the backend's Pub/Sub hub.
    Subscribe(Subscription),
    /// Has subcommands; the subcommand's row decides.
    Container,
}

/// The commands sealcache answers itself, one variant each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    Auth,
    Hello,
    Ping,
    Echo,
    Quit,
    Reset,
    Select,
    /// INFO: the backend's sections, then sealcache's own.
    Info,
    /// COMMAND and its subcommands, from the table.
    Command,
    /// CONFIG GET: the backend's answer without its secrets and paths.
    ConfigGet,
    WhoAmI,
    ClientId,
    ClientGetName,
    ClientSetName,
    ClientSetInfo,
    ClientInfo,
    ClientList,
    /// CLIENT NO-EVICT / NO-TOUCH: accepted, nothing to do.
    ClientNoOp,
    ClientHelp,
}

impl Local {
    /// What an unauthenticated client may run (redis-server 7.0's commands
    /// flagged `no-auth`).
    pub fn before_auth(self) -> bool {
        matches!(
            self,
            Local::Auth | Local::Hello | Local::Quit | Local::Reset
        )
    }

    /// What a RESP2 client in Pub/Sub mode may run besides (un)subscribing.
    pub fn while_subscribed(self) -> bool {
        matches!(self, Local::Ping | Local::Quit | Local::Reset)
    }

    /// What Redis queues inside MULTI that sealcache can let the backend run.
    pub fn queued_upstream(self) -> bool {
        matches!(self, Local::Ping | Local::Echo)
    }
}

/// The transaction commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transaction {
    Multi,
    Exec,
    Discard,
    Watch,
    Unwatch,
}

/// The Pub/Sub commands that change a client's subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscription {
    Subscribe,
    Unsubscribe,
    PSubscribe,
    PUnsubscribe,
    SSubscribe,
    SUnsubscribe,
}

impl Subscription {
    /// Whether it adds subscriptions (else it removes them).
    pub fn subscribes(self) -> bool {
        matches!(
            self,
            Subscription::Subscribe | Subscription::PSubscribe | Subscription::SSubscribe
        )
    }
}

/// How a RESP3 null reply is rendered for RESP2 clients, which have two nulls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nulls {
    /// `$-1` (most commands).
    Bulk,
    /// `*-1` for a top-level null (blocking pops timing out, EXEC aborted, XRANGE … COUNT 0).
    Array,
    /// `*-1` for nulls inside the top-level array (GEOPOS).
    ArrayInElements,
    /// `*-1` when a count argument was given, else `$-1` (LPOP/RPOP key [count]).
    ArrayWhenCounted,
}

/// Commands that act on a whole database rather than on keys: with routes to
/// several backends they are merged, run on each backend, or refused
/// (`docs/backends.md` says which and why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyspace {
    /// An ordinary command: its keys (or the default route) decide.
    Keys,
    /// SCAN: refused across backends (a cursor cannot span stores).
    Scan,
    /// KEYS: merged, each backend's answer cut to the keys its routes own.
    KeysPattern,
    /// DBSIZE: refused across backends (an exact count would read every key).
    DbSize,
    /// RANDOMKEY: refused across backends (no uniform pick without counts).
    RandomKey,
    /// FLUSHDB/FLUSHALL: run on every backend.
    Flush,
}

/// What a command does to the values of the keys it writes, for a
/// transaction in which an emulated command reads such a key after it
/// (`MULTI; SET k 5; INCR k; EXEC`): sealcache reads the key before the
/// transaction runs and follows the change from the command's own
/// arguments (`semantics::transaction`). A command whose change it cannot
/// follow (the server computes it: SUNIONSTORE, LPUSH, RENAME…) makes an
/// emulated command on that key after it in the same transaction a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// The server computes what its keys hold (or the command only reads).
    Unknown,
    /// Changes every key of the database (FLUSHDB, FLUSHALL, SWAPDB).
    Everything,
    /// SET key value [NX|XX] [GET] [EX…|KEEPTTL].
    Set,
    /// SETNX key value.
    SetIfAbsent,
    /// SETEX/PSETEX key amount value.
    SetWithExpiry,
    /// GETSET key value.
    GetSet,
    /// GETDEL key.
    GetDel,
    /// DEL/UNLINK key…
    Delete,
    /// MSET key value …
    MSet,
    /// HSET/HMSET key field value …
    HashSet,
    /// HSETNX key field value.
    HashSetIfAbsent,
    /// EXPIRE/PEXPIRE key amount [NX|XX|GT|LT]: a positive amount leaves the
    /// value (a non-positive one deletes the key: not followed).
    Expire,
    /// Leaves the value as it is (PERSIST).
    Keep,
}

/// Decisions about a row beyond dispatch and policy, with builder methods so
/// rows read `x().nulls(Array)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extras {
    pub nulls: Nulls,
    /// An ability the backend must declare, beyond what the dispatch implies.
    pub needs: Option<Capability>,
    pub keyspace: Keyspace,
    pub syntax: Syntax,
    pub follow: Follow,
}

/// A row's extras with the defaults: `$-1` nulls, no capability, keyed,
/// nothing to read in the arguments, changes not followed.
pub const fn x() -> Extras {
    Extras {
        nulls: Nulls::Bulk,
        needs: None,
        keyspace: Keyspace::Keys,
        syntax: Syntax::Plain,
        follow: Follow::Unknown,
    }
}

/// How a command's arguments shape its reply, for value rules several
/// commands share: `values/` reads a command's options by this column, never
/// by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// Nothing beyond the value rule.
    Plain,
    /// ZRANGE and its older forms.
    ZRange(RangeSyntax),
    /// ZUNION and ZINTER (`weighted`: WEIGHTS and AGGREGATE) and ZDIFF.
    ZCombine { weighted: bool },
    /// ZPOPMIN / ZPOPMAX: `[member, score]` without a count.
    ZPop(Direction),
    /// ZRANDMEMBER: one member without a count.
    ZRandMember,
    /// SMEMBERS, SINTER, SUNION, SDIFF: members of a set, in no order.
    Set,
    /// SPOP, SRANDMEMBER: members of a set, one without a count.
    SetPick,
    /// ZMPOP / BZMPOP: `numkeys` is `args[numkeys_at]`, MIN/MAX after the keys.
    ZMultiPop { numkeys_at: usize },
    /// GEORADIUS…, GEOSEARCH….
    Geo(GeoSyntax),
    /// LRANGE: always an array.
    ListRange,
    /// LPOP / RPOP: an array or nil with a count.
    ListPop,
    /// SPUBLISH: counts shard-channel subscribers only.
    ShardPublish,
    /// PUBSUB NUMSUB / SHARDNUMSUB (`shard`): `[channel, count]` pairs.
    NumSub { shard: bool },
}

impl Syntax {
    /// Replies of members of a sorted set, `[member, score]` pairs included.
    pub fn sorted_set(self) -> bool {
        matches!(
            self,
            Syntax::ZRange(_) | Syntax::ZCombine { .. } | Syntax::ZPop(_) | Syntax::ZRandMember
        )
    }

    /// Replies of members of a set (no order, no scores).
    pub fn set(self) -> bool {
        matches!(self, Syntax::Set | Syntax::SetPick)
    }
}

impl Extras {
    pub const fn nulls(mut self, nulls: Nulls) -> Extras {
        self.nulls = nulls;
        self
    }

    pub const fn needs(mut self, capability: Capability) -> Extras {
        self.needs = Some(capability);
        self
    }

    pub const fn keyspace(mut self, keyspace: Keyspace) -> Extras {
        self.keyspace = keyspace;
        self
    }

    pub const fn syntax(mut self, syntax: Syntax) -> Extras {
        self.syntax = syntax;
        self
    }

    pub const fn follows(mut self, follow: Follow) -> Extras {
        self.follow = follow;
        self
    }
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
    /// Every argument from this index is a member (SADD 2, SREM 2, SISMEMBER 2, ZREM 2, ZSCORE 2…).
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
    /// INCR/DECR/INCRBY/DECRBY: read, add, write back atomically.
    IncrBy(Delta),
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
    /// RENAME (`nx: false`) / RENAMENX: values re-encrypted for the new key
    /// name, TTL kept.
    Rename {
        nx: bool,
    },
    /// COPY: as RENAME, the source kept.
    Copy,
    /// ZRANK (`rev: false`) / ZREVRANK: members of equal score rank by
    /// plaintext, which the upstream cannot compare.
    Rank {
        rev: bool,
    },
}

impl Emulation {
    /// Computed from one string or hash field, read and written back through
    /// the backend's read-modify-write (INCR, APPEND, HINCRBYFLOAT, STRLEN…):
    /// every backend serves it, whatever commands it runs natively, and a
    /// transaction can compute it at EXEC.
    pub fn on_one_value(self) -> bool {
        !matches!(
            self,
            Emulation::Session
                | Emulation::Rename { .. }
                | Emulation::Copy
                | Emulation::Rank { .. }
        )
    }
}

/// The increment of INCR, DECR, INCRBY and DECRBY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delta {
    /// INCR.
    One,
    /// DECR.
    MinusOne,
    /// INCRBY key n.
    Argument,
    /// DECRBY key n.
    NegatedArgument,
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
    pub extras: Extras,
}

impl CommandSpec {
    /// The ability the route's backend must have for this command, from its
    /// dispatch or its extras (`XREAD … BLOCK` is checked when it is sent).
    pub fn needs(&self) -> Option<Capability> {
        match self.dispatch {
            Dispatch::Transaction(_) => Some(Capability::Transactions),
            Dispatch::Blocking => Some(Capability::Blocking),
            Dispatch::Subscribe(_) => Some(Capability::PubSub),
            _ => self.extras.needs,
        }
    }

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
