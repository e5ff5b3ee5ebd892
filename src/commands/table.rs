//! The command table: every command Redis 7 lists in `COMMAND` (subcommands
//! included), with its arity, key positions, key specifications, dispatch and
//! value policy.
//!
//! The first columns of each row (name, arity, legacy key positions,
//! movablekeys, key specifications and key procedure) are generated from
//! redis-server 7.0.15 by `scripts/dev/gen_command_table.py`, plus the 7.2
//! commands that real clients send. Dispatch, policy and null style are
//! decisions, kept here by hand; the generator keeps them as they are.

use super::keys::BeginSearch::{Index, Keyword};
use super::keys::FindKeys::{KeyNum, Range};
use super::keys::flags::*;
use super::keys::{BeginSearch, FindKeys, KeysProc, keys, ks};
use super::spec::Delta::*;
use super::spec::Dispatch::*;
use super::spec::Emulation::*;
use super::spec::Local::*;
use super::spec::Nulls::*;
use super::spec::Policy::*;
use super::spec::Transaction::*;
use super::spec::ValueRule::*;
use super::spec::{
    CommandSpec, Direction, Follow, GeoSyntax, KeyPositions, Keyspace, RangeKind, RangeSyntax,
    Subscription, Syntax, x,
};
use crate::backend::capability::Capability;

// Reasons shared by several rows. Each is shown to the client as
// `ERR sealcache: <COMMAND> is not available on encrypted data: <reason>`.
const SCRIPTS: &str = "scripts run inside Redis, where values are ciphertext";
const FUNCTIONS: &str = "functions run inside Redis, where values are ciphertext";
const BITS: &str = "bit operations would act on the ciphertext, not on your value";
const LIST_EQUALITY: &str =
    "list elements are encrypted with a random nonce, so Redis cannot find equal elements";
const HYPERLOGLOG: &str =
    "Redis would estimate counts from encrypted members, so its counts differ from those for yours";
pub(crate) const LEX_RANGE: &str =
    "lexicographic ranges would compare encrypted members, not yours; use scores or ranks";

macro_rules! c {
    ($name:literal, $arity:literal, $first:literal, $last:literal, $step:literal, $movable:literal,
     $keys:expr, $dispatch:expr, $policy:expr, $extras:expr) => {
        CommandSpec {
            name: $name,
            arity: $arity,
            legacy_keys: KeyPositions {
                first: $first,
                last: $last,
                step: $step,
            },
            movable_keys: $movable,
            keys: $keys,
            dispatch: $dispatch,
            policy: $policy,
            extras: $extras,
        }
    };
}

/// Sorted by name, so lookups can binary-search.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    c!("ACL", -2, 0, 0, 0, false, keys(&[]), Container, Pass, x()),
    c!("ACL|CAT", -2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("ACL|DELUSER", -3, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("ACL|DRYRUN", -4, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("ACL|GENPASS", -2, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("ACL|GETUSER", 3, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("ACL|HELP", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("ACL|LIST", 2, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("ACL|LOAD", 2, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("ACL|LOG", -2, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("ACL|SAVE", 2, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("ACL|SETUSER", -3, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("ACL|USERS", 2, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("ACL|WHOAMI", 2, 0, 0, 0, false, keys(&[]), Local(WhoAmI), Emulate(Session), x()),
    c!("APPEND", 3, 1, 1, 1, false, keys(&[ks(RW | INSERT, Index(1), Range(0, 1, 0))]), Shared, Emulate(Append), x()),
    c!("ASKING", 1, 0, 0, 0, false, keys(&[]), Shared, Reject("Redis Cluster redirection is not proxied"), x()),
    c!("AUTH", -2, 0, 0, 0, false, keys(&[]), Local(Auth), Emulate(Session), x()),
    c!("BGREWRITEAOF", 1, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("BGSAVE", -1, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("BITCOUNT", -2, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Reject(BITS), x()),
    c!("BITFIELD", -2, 1, 1, 1, false, keys(&[ks(RW | ACCESS | UPDATE | VARIABLE_FLAGS, Index(1), Range(0, 1, 0))]).proc(KeysProc::Bitfield), Shared, Reject(BITS), x()),
    c!("BITFIELD_RO", -2, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Reject(BITS), x()),
    c!("BITOP", -4, 2, -1, 1, false, keys(&[ks(OW | UPDATE, Index(2), Range(0, 1, 0)), ks(RO | ACCESS, Index(3), Range(-1, 1, 0))]), Shared, Reject(BITS), x()),
    c!("BITPOS", -3, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Reject(BITS), x()),
    c!("BLMOVE", 6, 1, 2, 1, false, keys(&[ks(RW | ACCESS | DELETE, Index(1), Range(0, 1, 0)), ks(RW | INSERT, Index(2), Range(0, 1, 0))]), Blocking, Encrypt(ListReply), x().nulls(Array)),
    c!("BLMPOP", -5, 0, 0, 0, true, keys(&[ks(RW | ACCESS | DELETE, Index(2), KeyNum(0, 1, 1))]).proc(KeysProc::NumKeys { store: 0, count: 2, first: 3 }), Blocking, Encrypt(ListMultiPop), x().nulls(Array)),
    c!("BLPOP", -3, 1, -2, 1, false, keys(&[ks(RW | ACCESS | DELETE, Index(1), Range(-2, 1, 0))]), Blocking, Encrypt(ListKeyedPop), x().nulls(Array)),
    c!("BRPOP", -3, 1, -2, 1, false, keys(&[ks(RW | ACCESS | DELETE, Index(1), Range(-2, 1, 0))]), Blocking, Encrypt(ListKeyedPop), x().nulls(Array)),
    c!("BRPOPLPUSH", 4, 1, 2, 1, false, keys(&[ks(RW | ACCESS | DELETE, Index(1), Range(0, 1, 0)), ks(RW | INSERT, Index(2), Range(0, 1, 0))]), Blocking, Encrypt(ListReply), x().nulls(Array)),
    c!("BZMPOP", -5, 0, 0, 0, true, keys(&[ks(RW | ACCESS | DELETE, Index(2), KeyNum(0, 1, 1))]).proc(KeysProc::NumKeys { store: 0, count: 2, first: 3 }), Blocking, Encrypt(ZMultiPop), x().nulls(Array).syntax(Syntax::ZMultiPop { numkeys_at: 2 })),
    c!("BZPOPMAX", -3, 1, -2, 1, false, keys(&[ks(RW | ACCESS | DELETE, Index(1), Range(-2, 1, 0))]), Blocking, Encrypt(ZKeyedPop), x().nulls(Array)),
    c!("BZPOPMIN", -3, 1, -2, 1, false, keys(&[ks(RW | ACCESS | DELETE, Index(1), Range(-2, 1, 0))]), Blocking, Encrypt(ZKeyedPop), x().nulls(Array)),
    c!("CLIENT", -2, 0, 0, 0, false, keys(&[]), Container, Pass, x()),
    c!("CLIENT|CACHING", 3, 0, 0, 0, false, keys(&[]), Shared, Reject("client-side caching invalidations are not proxied"), x()),
    c!("CLIENT|GETNAME", 2, 0, 0, 0, false, keys(&[]), Local(ClientGetName), Emulate(Session), x()),
    c!("CLIENT|GETREDIR", 2, 0, 0, 0, false, keys(&[]), Shared, Reject("client-side caching invalidations are not proxied"), x()),
    c!("CLIENT|HELP", 2, 0, 0, 0, false, keys(&[]), Local(ClientHelp), Emulate(Session), x()),
    c!("CLIENT|ID", 2, 0, 0, 0, false, keys(&[]), Local(ClientId), Emulate(Session), x()),
    c!("CLIENT|INFO", 2, 0, 0, 0, false, keys(&[]), Local(ClientInfo), Emulate(Session), x()),
    c!("CLIENT|KILL", -3, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("CLIENT|LIST", -2, 0, 0, 0, false, keys(&[]), Local(ClientList), Emulate(Session), x()),
    c!("CLIENT|NO-EVICT", 3, 0, 0, 0, false, keys(&[]), Local(ClientNoOp), Emulate(Session), x()),
    c!("CLIENT|NO-TOUCH", 3, 0, 0, 0, false, keys(&[]), Local(ClientNoOp), Emulate(Session), x()),
    c!("CLIENT|PAUSE", -3, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("CLIENT|REPLY", 3, 0, 0, 0, false, keys(&[]), Shared, Reject("replies cannot be suppressed through a pipelined proxy"), x()),
    c!("CLIENT|SETINFO", 4, 0, 0, 0, false, keys(&[]), Local(ClientSetInfo), Emulate(Session), x()),
    c!("CLIENT|SETNAME", 3, 0, 0, 0, false, keys(&[]), Local(ClientSetName), Emulate(Session), x()),
    c!("CLIENT|TRACKING", -3, 0, 0, 0, false, keys(&[]), Shared, Reject("client-side caching invalidations are not proxied"), x()),
    c!("CLIENT|TRACKINGINFO", 2, 0, 0, 0, false, keys(&[]), Shared, Reject("client-side caching invalidations are not proxied"), x()),
    c!("CLIENT|UNBLOCK", -3, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("CLIENT|UNPAUSE", 2, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("CLUSTER", -2, 0, 0, 0, false, keys(&[]), Container, Pass, x()),
    c!("CLUSTER|ADDSLOTS", -3, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("CLUSTER|ADDSLOTSRANGE", -4, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("CLUSTER|BUMPEPOCH", 2, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("CLUSTER|COUNT-FAILURE-REPORTS", 3, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("CLUSTER|COUNTKEYSINSLOT", 3, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("CLUSTER|DELSLOTS", -3, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("CLUSTER|DELSLOTSRANGE", -4, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("CLUSTER|FAILOVER", -2, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("CLUSTER|FLUSHSLOTS", 2, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("CLUSTER|FORGET", 3, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("CLUSTER|GETKEYSINSLOT", 4, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("CLUSTER|HELP", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("CLUSTER|INFO", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("CLUSTER|KEYSLOT", 3, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("CLUSTER|LINKS", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("CLUSTER|MEET", -4, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("CLUSTER|MYID", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("CLUSTER|NODES", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("CLUSTER|REPLICAS", 3, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("CLUSTER|REPLICATE", 3, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("CLUSTER|RESET", -2, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("CLUSTER|SAVECONFIG", 2, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("CLUSTER|SET-CONFIG-EPOCH", 3, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("CLUSTER|SETSLOT", -4, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("CLUSTER|SHARDS", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("CLUSTER|SLAVES", 3, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("CLUSTER|SLOTS", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("COMMAND", -1, 0, 0, 0, false, keys(&[]), Local(Command), Emulate(Session), x()),
    c!("COMMAND|COUNT", 2, 0, 0, 0, false, keys(&[]), Local(Command), Emulate(Session), x()),
    c!("COMMAND|DOCS", -2, 0, 0, 0, false, keys(&[]), Local(Command), Emulate(Session), x()),
    c!("COMMAND|GETKEYS", -4, 0, 0, 0, false, keys(&[]), Local(Command), Emulate(Session), x()),
    c!("COMMAND|GETKEYSANDFLAGS", -4, 0, 0, 0, false, keys(&[]), Local(Command), Emulate(Session), x()),
    c!("COMMAND|HELP", 2, 0, 0, 0, false, keys(&[]), Local(Command), Emulate(Session), x()),
    c!("COMMAND|INFO", -2, 0, 0, 0, false, keys(&[]), Local(Command), Emulate(Session), x()),
    c!("COMMAND|LIST", -2, 0, 0, 0, false, keys(&[]), Local(Command), Emulate(Session), x()),
    c!("CONFIG", -2, 0, 0, 0, false, keys(&[]), Container, Pass, x()),
    c!("CONFIG|GET", -3, 0, 0, 0, false, keys(&[]), Local(ConfigGet), Emulate(Session), x()),
    c!("CONFIG|HELP", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("CONFIG|RESETSTAT", 2, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("CONFIG|REWRITE", 2, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("CONFIG|SET", -4, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("COPY", -3, 1, 2, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0)), ks(OW | UPDATE, Index(2), Range(0, 1, 0))]), Shared, Emulate(Copy), x()),
    c!("DBSIZE", 1, 0, 0, 0, false, keys(&[]), Shared, Pass, x().keyspace(Keyspace::DbSize)),
    c!("DEBUG", -2, 0, 0, 0, false, keys(&[]), Shared, Reject("it inspects and alters the upstream's internals"), x()),
    c!("DECR", 2, 1, 1, 1, false, keys(&[ks(RW | ACCESS | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Emulate(IncrBy(MinusOne)), x()),
    c!("DECRBY", 3, 1, 1, 1, false, keys(&[ks(RW | ACCESS | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Emulate(IncrBy(NegatedArgument)), x()),
    c!("DEL", -2, 1, -1, 1, false, keys(&[ks(RM | DELETE, Index(1), Range(-1, 1, 0))]), Shared, Pass, x().follows(Follow::Delete)),
    c!("DISCARD", 1, 0, 0, 0, false, keys(&[]), Transaction(Discard), Pass, x()),
    c!("DUMP", 2, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Reject("a dump holds ciphertext bound to this key and readable nowhere else"), x()),
    c!("ECHO", 2, 0, 0, 0, false, keys(&[]), Local(Echo), Emulate(Session), x()),
    c!("EVAL", -3, 0, 0, 0, true, keys(&[ks(RW | ACCESS | UPDATE, Index(2), KeyNum(0, 1, 1))]).proc(KeysProc::NumKeys { store: 0, count: 2, first: 3 }).no_mandatory_keys(), Shared, Reject(SCRIPTS), x()),
    c!("EVALSHA", -3, 0, 0, 0, true, keys(&[ks(RW | ACCESS | UPDATE, Index(2), KeyNum(0, 1, 1))]).proc(KeysProc::NumKeys { store: 0, count: 2, first: 3 }).no_mandatory_keys(), Shared, Reject(SCRIPTS), x()),
    c!("EVALSHA_RO", -3, 0, 0, 0, true, keys(&[ks(RO | ACCESS, Index(2), KeyNum(0, 1, 1))]).proc(KeysProc::NumKeys { store: 0, count: 2, first: 3 }).no_mandatory_keys(), Shared, Reject(SCRIPTS), x()),
    c!("EVAL_RO", -3, 0, 0, 0, true, keys(&[ks(RO | ACCESS, Index(2), KeyNum(0, 1, 1))]).proc(KeysProc::NumKeys { store: 0, count: 2, first: 3 }).no_mandatory_keys(), Shared, Reject(SCRIPTS), x()),
    c!("EXEC", 1, 0, 0, 0, false, keys(&[]), Transaction(Exec), Pass, x().nulls(Array)),
    c!("EXISTS", -2, 1, -1, 1, false, keys(&[ks(RO, Index(1), Range(-1, 1, 0))]), Shared, Pass, x()),
    c!("EXPIRE", -3, 1, 1, 1, false, keys(&[ks(RW | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Pass, x().follows(Follow::Expire)),
    c!("EXPIREAT", -3, 1, 1, 1, false, keys(&[ks(RW | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("EXPIRETIME", 2, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("FAILOVER", -1, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("FCALL", -3, 0, 0, 0, true, keys(&[ks(RW | ACCESS | UPDATE, Index(2), KeyNum(0, 1, 1))]).proc(KeysProc::NumKeys { store: 0, count: 2, first: 3 }).no_mandatory_keys(), Shared, Reject(FUNCTIONS), x()),
    c!("FCALL_RO", -3, 0, 0, 0, true, keys(&[ks(RO | ACCESS, Index(2), KeyNum(0, 1, 1))]).proc(KeysProc::NumKeys { store: 0, count: 2, first: 3 }).no_mandatory_keys(), Shared, Reject(FUNCTIONS), x()),
    c!("FLUSHALL", -1, 0, 0, 0, false, keys(&[]), Shared, Admin, x().keyspace(Keyspace::Flush).follows(Follow::Everything)),
    c!("FLUSHDB", -1, 0, 0, 0, false, keys(&[]), Shared, Admin, x().keyspace(Keyspace::Flush).follows(Follow::Everything)),
    c!("FUNCTION", -2, 0, 0, 0, false, keys(&[]), Container, Pass, x()),
    c!("FUNCTION|DELETE", 3, 0, 0, 0, false, keys(&[]), Shared, Admin, x().needs(Capability::Scripts)),
    c!("FUNCTION|DUMP", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x().needs(Capability::Scripts)),
    c!("FUNCTION|FLUSH", -2, 0, 0, 0, false, keys(&[]), Shared, Admin, x().needs(Capability::Scripts)),
    c!("FUNCTION|HELP", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("FUNCTION|KILL", 2, 0, 0, 0, false, keys(&[]), Shared, Admin, x().needs(Capability::Scripts)),
    c!("FUNCTION|LIST", -2, 0, 0, 0, false, keys(&[]), Shared, Pass, x().needs(Capability::Scripts)),
    c!("FUNCTION|LOAD", -3, 0, 0, 0, false, keys(&[]), Shared, Reject(FUNCTIONS), x().needs(Capability::Scripts)),
    c!("FUNCTION|RESTORE", -3, 0, 0, 0, false, keys(&[]), Shared, Admin, x().needs(Capability::Scripts)),
    c!("FUNCTION|STATS", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x().needs(Capability::Scripts)),
    c!("GEOADD", -5, 1, 1, 1, false, keys(&[ks(RW | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Encrypt(GeoAdd), x()),
    c!("GEODIST", -4, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(GeoDist), x()),
    c!("GEOHASH", -2, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(MembersFrom(2)), x()),
    c!("GEOPOS", -2, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(MembersFrom(2)), x().nulls(ArrayInElements)),
    c!("GEORADIUS", -6, 1, 1, 1, true, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0)), ks(OW | UPDATE, Keyword("STORE", 6), Range(0, 1, 0)), ks(OW | UPDATE, Keyword("STOREDIST", 6), Range(0, 1, 0))]).proc(KeysProc::GeoRadius), Shared, Encrypt(MemberReply), x().syntax(Syntax::Geo(GeoSyntax { base: 6, search: false, store_allowed: true, stores: false }))),
    c!("GEORADIUSBYMEMBER", -5, 1, 1, 1, true, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0)), ks(OW | UPDATE, Keyword("STORE", 5), Range(0, 1, 0)), ks(OW | UPDATE, Keyword("STOREDIST", 5), Range(0, 1, 0))]).proc(KeysProc::GeoRadius), Shared, Encrypt(GeoSearch), x().syntax(Syntax::Geo(GeoSyntax { base: 5, search: false, store_allowed: true, stores: false }))),
    c!("GEORADIUSBYMEMBER_RO", -5, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(GeoSearch), x().syntax(Syntax::Geo(GeoSyntax { base: 5, search: false, store_allowed: false, stores: false }))),
    c!("GEORADIUS_RO", -6, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(MemberReply), x().syntax(Syntax::Geo(GeoSyntax { base: 6, search: false, store_allowed: false, stores: false }))),
    c!("GEOSEARCH", -7, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(GeoSearch), x().syntax(Syntax::Geo(GeoSyntax { base: 2, search: true, store_allowed: false, stores: false }))),
    c!("GEOSEARCHSTORE", -8, 1, 2, 1, false, keys(&[ks(OW | UPDATE, Index(1), Range(0, 1, 0)), ks(RO | ACCESS, Index(2), Range(0, 1, 0))]), Shared, Encrypt(GeoSearch), x().syntax(Syntax::Geo(GeoSyntax { base: 3, search: true, store_allowed: false, stores: true }))),
    c!("GET", 2, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(StringGet), x()),
    c!("GETBIT", 3, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Reject(BITS), x()),
    c!("GETDEL", 2, 1, 1, 1, false, keys(&[ks(RW | ACCESS | DELETE, Index(1), Range(0, 1, 0))]), Shared, Encrypt(StringGet), x().follows(Follow::GetDel)),
    c!("GETEX", -2, 1, 1, 1, false, keys(&[ks(RW | ACCESS | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Encrypt(StringGet), x()),
    c!("GETRANGE", 4, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Emulate(GetRange), x()),
    c!("GETSET", 3, 1, 1, 1, false, keys(&[ks(RW | ACCESS | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Encrypt(StringSwap), x().follows(Follow::GetSet)),
    c!("HDEL", -3, 1, 1, 1, false, keys(&[ks(RW | DELETE, Index(1), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("HELLO", -1, 0, 0, 0, false, keys(&[]), Local(Hello), Emulate(Session), x()),
    c!("HEXISTS", 3, 1, 1, 1, false, keys(&[ks(RO, Index(1), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("HGET", 3, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(HashGet), x()),
    c!("HGETALL", 2, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(HashGetAll), x()),
    c!("HINCRBY", 4, 1, 1, 1, false, keys(&[ks(RW | ACCESS | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Emulate(HashIncrBy), x()),
    c!("HINCRBYFLOAT", 4, 1, 1, 1, false, keys(&[ks(RW | ACCESS | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Emulate(HashIncrByFloat), x()),
    c!("HKEYS", 2, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("HLEN", 2, 1, 1, 1, false, keys(&[ks(RO, Index(1), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("HMGET", -3, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(HashMGet), x()),
    c!("HMSET", -4, 1, 1, 1, false, keys(&[ks(RW | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Encrypt(HashSet), x().follows(Follow::HashSet)),
    c!("HRANDFIELD", -2, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(HashRandField), x()),
    c!("HSCAN", -3, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(HashScan), x()),
    c!("HSET", -4, 1, 1, 1, false, keys(&[ks(RW | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Encrypt(HashSet), x().follows(Follow::HashSet)),
    c!("HSETNX", 4, 1, 1, 1, false, keys(&[ks(RW | INSERT, Index(1), Range(0, 1, 0))]), Shared, Encrypt(HashSet), x().follows(Follow::HashSetIfAbsent)),
    c!("HSTRLEN", 3, 1, 1, 1, false, keys(&[ks(RO, Index(1), Range(0, 1, 0))]), Shared, Emulate(HashStrlen), x()),
    c!("HVALS", 2, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(HashVals), x()),
    c!("INCR", 2, 1, 1, 1, false, keys(&[ks(RW | ACCESS | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Emulate(IncrBy(One)), x()),
    c!("INCRBY", 3, 1, 1, 1, false, keys(&[ks(RW | ACCESS | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Emulate(IncrBy(Argument)), x()),
    c!("INCRBYFLOAT", 3, 1, 1, 1, false, keys(&[ks(RW | ACCESS | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Emulate(IncrByFloat), x()),
    c!("INFO", -1, 0, 0, 0, false, keys(&[]), Local(Info), Emulate(Session), x()),
    c!("KEYS", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x().keyspace(Keyspace::KeysPattern)),
    c!("LASTSAVE", 1, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("LATENCY", -2, 0, 0, 0, false, keys(&[]), Container, Pass, x()),
    c!("LATENCY|DOCTOR", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("LATENCY|GRAPH", 3, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("LATENCY|HELP", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("LATENCY|HISTOGRAM", -2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("LATENCY|HISTORY", 3, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("LATENCY|LATEST", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("LATENCY|RESET", -2, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("LCS", -3, 1, 2, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(1, 1, 0))]), Shared, Reject("it compares values, which Redis holds only as ciphertext"), x()),
    c!("LINDEX", 3, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(ListReply), x()),
    c!("LINSERT", 5, 1, 1, 1, false, keys(&[ks(RW | INSERT, Index(1), Range(0, 1, 0))]), Shared, Reject(LIST_EQUALITY), x()),
    c!("LLEN", 2, 1, 1, 1, false, keys(&[ks(RO, Index(1), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("LMOVE", 5, 1, 2, 1, false, keys(&[ks(RW | ACCESS | DELETE, Index(1), Range(0, 1, 0)), ks(RW | INSERT, Index(2), Range(0, 1, 0))]), Shared, Encrypt(ListReply), x()),
    c!("LMPOP", -4, 0, 0, 0, true, keys(&[ks(RW | ACCESS | DELETE, Index(1), KeyNum(0, 1, 1))]).proc(KeysProc::NumKeys { store: 0, count: 1, first: 2 }), Shared, Encrypt(ListMultiPop), x().nulls(Array)),
    c!("LOLWUT", -1, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("LPOP", -2, 1, 1, 1, false, keys(&[ks(RW | ACCESS | DELETE, Index(1), Range(0, 1, 0))]), Shared, Encrypt(ListReply), x().nulls(ArrayWhenCounted).syntax(Syntax::ListPop)),
    c!("LPOS", -3, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Reject(LIST_EQUALITY), x()),
    c!("LPUSH", -3, 1, 1, 1, false, keys(&[ks(RW | INSERT, Index(1), Range(0, 1, 0))]), Shared, Encrypt(ListPush), x()),
    c!("LPUSHX", -3, 1, 1, 1, false, keys(&[ks(RW | INSERT, Index(1), Range(0, 1, 0))]), Shared, Encrypt(ListPush), x()),
    c!("LRANGE", 4, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(ListReply), x().syntax(Syntax::ListRange)),
    c!("LREM", 4, 1, 1, 1, false, keys(&[ks(RW | DELETE, Index(1), Range(0, 1, 0))]), Shared, Reject(LIST_EQUALITY), x()),
    c!("LSET", 4, 1, 1, 1, false, keys(&[ks(RW | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Encrypt(ListSet), x()),
    c!("LTRIM", 4, 1, 1, 1, false, keys(&[ks(RW | DELETE, Index(1), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("MEMORY", -2, 0, 0, 0, false, keys(&[]), Container, Pass, x()),
    c!("MEMORY|DOCTOR", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("MEMORY|HELP", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("MEMORY|MALLOC-STATS", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("MEMORY|PURGE", 2, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("MEMORY|STATS", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("MEMORY|USAGE", -3, 2, 2, 1, false, keys(&[ks(RO, Index(2), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("MGET", -2, 1, -1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(-1, 1, 0))]), Shared, Encrypt(MGet), x()),
    c!("MIGRATE", -6, 3, 3, 1, true, keys(&[ks(RW | ACCESS | DELETE, Index(3), Range(0, 1, 0)), ks(RW | ACCESS | DELETE | INCOMPLETE, Keyword("KEYS", -2), Range(-1, 1, 0))]).proc(KeysProc::Migrate), Shared, Reject("it moves keys to another server, outside sealcache"), x()),
    c!("MODULE", -2, 0, 0, 0, false, keys(&[]), Container, Pass, x()),
    c!("MODULE|HELP", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("MODULE|LIST", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("MODULE|LOAD", -3, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("MODULE|LOADEX", -3, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("MODULE|UNLOAD", 3, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("MONITOR", 1, 0, 0, 0, false, keys(&[]), Shared, Reject("it would stream upstream traffic, which is ciphertext, and bypass the proxy's access control"), x()),
    c!("MOVE", 3, 1, 1, 1, false, keys(&[ks(RW | ACCESS | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Pass, x().needs(Capability::Databases)),
    c!("MSET", -3, 1, -1, 2, false, keys(&[ks(OW | UPDATE, Index(1), Range(-1, 2, 0))]), Shared, Encrypt(MSet), x().follows(Follow::MSet)),
    c!("MSETNX", -3, 1, -1, 2, false, keys(&[ks(OW | INSERT, Index(1), Range(-1, 2, 0))]), Shared, Encrypt(MSet), x()),
    c!("MULTI", 1, 0, 0, 0, false, keys(&[]), Transaction(Multi), Pass, x()),
    c!("OBJECT", -2, 0, 0, 0, false, keys(&[]), Container, Pass, x()),
    c!("OBJECT|ENCODING", 3, 2, 2, 1, false, keys(&[ks(RO, Index(2), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("OBJECT|FREQ", 3, 2, 2, 1, false, keys(&[ks(RO, Index(2), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("OBJECT|HELP", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("OBJECT|IDLETIME", 3, 2, 2, 1, false, keys(&[ks(RO, Index(2), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("OBJECT|REFCOUNT", 3, 2, 2, 1, false, keys(&[ks(RO, Index(2), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("PERSIST", 2, 1, 1, 1, false, keys(&[ks(RW | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Pass, x().follows(Follow::Keep)),
    c!("PEXPIRE", -3, 1, 1, 1, false, keys(&[ks(RW | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Pass, x().follows(Follow::Expire)),
    c!("PEXPIREAT", -3, 1, 1, 1, false, keys(&[ks(RW | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("PEXPIRETIME", 2, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("PFADD", -2, 1, 1, 1, false, keys(&[ks(RW | INSERT, Index(1), Range(0, 1, 0))]), Shared, Reject(HYPERLOGLOG), x()),
    c!("PFCOUNT", -2, 1, -1, 1, false, keys(&[ks(RW | ACCESS, Index(1), Range(-1, 1, 0))]), Shared, Reject(HYPERLOGLOG), x()),
    c!("PFDEBUG", 3, 2, 2, 1, false, keys(&[ks(RW | ACCESS, Index(2), Range(0, 1, 0))]), Shared, Reject("it is a Redis debugging command that exposes HyperLogLog internals"), x()),
    c!("PFMERGE", -2, 1, -1, 1, false, keys(&[ks(RW | ACCESS | INSERT, Index(1), Range(0, 1, 0)), ks(RO | ACCESS, Index(2), Range(-1, 1, 0))]), Shared, Reject(HYPERLOGLOG), x()),
    c!("PFSELFTEST", 1, 0, 0, 0, false, keys(&[]), Shared, Reject("it is an internal Redis self-test"), x()),
    c!("PING", -1, 0, 0, 0, false, keys(&[]), Local(Ping), Emulate(Session), x()),
    c!("PSETEX", 4, 1, 1, 1, false, keys(&[ks(OW | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Encrypt(StringValueAt(3)), x().follows(Follow::SetWithExpiry)),
    c!("PSUBSCRIBE", -2, 0, 0, 0, false, keys(&[]), Subscribe(Subscription::PSubscribe), Pass, x()),
    c!("PSYNC", -3, 0, 0, 0, false, keys(&[]), Shared, Reject("replication streams raw upstream data"), x()),
    c!("PTTL", 2, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("PUBLISH", 3, 0, 0, 0, false, keys(&[]), Shared, Encrypt(Publish), x().needs(Capability::PubSub)),
    c!("PUBSUB", -2, 0, 0, 0, false, keys(&[]), Container, Pass, x()),
    c!("PUBSUB|CHANNELS", -2, 0, 0, 0, false, keys(&[]), Shared, Pass, x().needs(Capability::PubSub)),
    c!("PUBSUB|HELP", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("PUBSUB|NUMPAT", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x().needs(Capability::PubSub)),
    c!("PUBSUB|NUMSUB", -2, 0, 0, 0, false, keys(&[]), Shared, Pass, x().needs(Capability::PubSub).syntax(Syntax::NumSub { shard: false })),
    c!("PUBSUB|SHARDCHANNELS", -2, 0, 0, 0, false, keys(&[]), Shared, Pass, x().needs(Capability::PubSub)),
    c!("PUBSUB|SHARDNUMSUB", -2, 0, 0, 0, false, keys(&[]), Shared, Pass, x().needs(Capability::PubSub).syntax(Syntax::NumSub { shard: true })),
    c!("PUNSUBSCRIBE", -1, 0, 0, 0, false, keys(&[]), Subscribe(Subscription::PUnsubscribe), Pass, x()),
    c!("QUIT", -1, 0, 0, 0, false, keys(&[]), Local(Quit), Emulate(Session), x()),
    c!("RANDOMKEY", 1, 0, 0, 0, false, keys(&[]), Shared, Pass, x().keyspace(Keyspace::RandomKey)),
    c!("READONLY", 1, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("READWRITE", 1, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("RENAME", 3, 1, 2, 1, false, keys(&[ks(RW | ACCESS | DELETE, Index(1), Range(0, 1, 0)), ks(OW | UPDATE, Index(2), Range(0, 1, 0))]), Shared, Emulate(Rename { nx: false }), x()),
    c!("RENAMENX", 3, 1, 2, 1, false, keys(&[ks(RW | ACCESS | DELETE, Index(1), Range(0, 1, 0)), ks(OW | INSERT, Index(2), Range(0, 1, 0))]), Shared, Emulate(Rename { nx: true }), x()),
    c!("REPLCONF", -1, 0, 0, 0, false, keys(&[]), Shared, Reject("replication is not proxied"), x()),
    c!("REPLICAOF", 3, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("RESET", 1, 0, 0, 0, false, keys(&[]), Local(Reset), Emulate(Session), x()),
    c!("RESTORE", -4, 1, 1, 1, false, keys(&[ks(OW | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Reject("it would store a serialized value that sealcache has not encrypted"), x()),
    c!("RESTORE-ASKING", -4, 1, 1, 1, false, keys(&[ks(OW | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Reject("it would store a serialized value that sealcache has not encrypted"), x()),
    c!("ROLE", 1, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("RPOP", -2, 1, 1, 1, false, keys(&[ks(RW | ACCESS | DELETE, Index(1), Range(0, 1, 0))]), Shared, Encrypt(ListReply), x().nulls(ArrayWhenCounted).syntax(Syntax::ListPop)),
    c!("RPOPLPUSH", 3, 1, 2, 1, false, keys(&[ks(RW | ACCESS | DELETE, Index(1), Range(0, 1, 0)), ks(RW | INSERT, Index(2), Range(0, 1, 0))]), Shared, Encrypt(ListReply), x()),
    c!("RPUSH", -3, 1, 1, 1, false, keys(&[ks(RW | INSERT, Index(1), Range(0, 1, 0))]), Shared, Encrypt(ListPush), x()),
    c!("RPUSHX", -3, 1, 1, 1, false, keys(&[ks(RW | INSERT, Index(1), Range(0, 1, 0))]), Shared, Encrypt(ListPush), x()),
    c!("SADD", -3, 1, 1, 1, false, keys(&[ks(RW | INSERT, Index(1), Range(0, 1, 0))]), Shared, Encrypt(MembersFrom(2)), x()),
    c!("SAVE", 1, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("SCAN", -2, 0, 0, 0, false, keys(&[]), Shared, Pass, x().keyspace(Keyspace::Scan)),
    c!("SCARD", 2, 1, 1, 1, false, keys(&[ks(RO, Index(1), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("SCRIPT", -2, 0, 0, 0, false, keys(&[]), Container, Pass, x()),
    c!("SCRIPT|DEBUG", 3, 0, 0, 0, false, keys(&[]), Shared, Reject(SCRIPTS), x().needs(Capability::Scripts)),
    c!("SCRIPT|EXISTS", -3, 0, 0, 0, false, keys(&[]), Shared, Pass, x().needs(Capability::Scripts)),
    c!("SCRIPT|FLUSH", -2, 0, 0, 0, false, keys(&[]), Shared, Admin, x().needs(Capability::Scripts)),
    c!("SCRIPT|HELP", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("SCRIPT|KILL", 2, 0, 0, 0, false, keys(&[]), Shared, Admin, x().needs(Capability::Scripts)),
    c!("SCRIPT|LOAD", 3, 0, 0, 0, false, keys(&[]), Shared, Reject(SCRIPTS), x().needs(Capability::Scripts)),
    c!("SDIFF", -2, 1, -1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(-1, 1, 0))]), Shared, Encrypt(MemberReply), x().syntax(Syntax::Set)),
    c!("SDIFFSTORE", -3, 1, -1, 1, false, keys(&[ks(OW | UPDATE, Index(1), Range(0, 1, 0)), ks(RO | ACCESS, Index(2), Range(-1, 1, 0))]), Shared, Pass, x()),
    c!("SELECT", 2, 0, 0, 0, false, keys(&[]), Local(Select), Emulate(Session), x()),
    c!("SET", -3, 1, 1, 1, false, keys(&[ks(RW | ACCESS | UPDATE | VARIABLE_FLAGS, Index(1), Range(0, 1, 0))]).proc(KeysProc::Set), Shared, Encrypt(StringSet), x().follows(Follow::Set)),
    c!("SETBIT", 4, 1, 1, 1, false, keys(&[ks(RW | ACCESS | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Reject(BITS), x()),
    c!("SETEX", 4, 1, 1, 1, false, keys(&[ks(OW | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Encrypt(StringValueAt(3)), x().follows(Follow::SetWithExpiry)),
    c!("SETNX", 3, 1, 1, 1, false, keys(&[ks(OW | INSERT, Index(1), Range(0, 1, 0))]), Shared, Encrypt(StringValueAt(2)), x().follows(Follow::SetIfAbsent)),
    c!("SETRANGE", 4, 1, 1, 1, false, keys(&[ks(RW | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Emulate(SetRange), x()),
    c!("SHUTDOWN", -1, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("SINTER", -2, 1, -1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(-1, 1, 0))]), Shared, Encrypt(MemberReply), x().syntax(Syntax::Set)),
    c!("SINTERCARD", -3, 0, 0, 0, true, keys(&[ks(RO | ACCESS, Index(1), KeyNum(0, 1, 1))]).proc(KeysProc::NumKeys { store: 0, count: 1, first: 2 }), Shared, Pass, x()),
    c!("SINTERSTORE", -3, 1, -1, 1, false, keys(&[ks(RW | UPDATE, Index(1), Range(0, 1, 0)), ks(RO | ACCESS, Index(2), Range(-1, 1, 0))]), Shared, Pass, x()),
    c!("SISMEMBER", 3, 1, 1, 1, false, keys(&[ks(RO, Index(1), Range(0, 1, 0))]), Shared, Encrypt(MembersFrom(2)), x()),
    c!("SLAVEOF", 3, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("SLOWLOG", -2, 0, 0, 0, false, keys(&[]), Container, Pass, x()),
    c!("SLOWLOG|GET", -2, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("SLOWLOG|HELP", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("SLOWLOG|LEN", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("SLOWLOG|RESET", 2, 0, 0, 0, false, keys(&[]), Shared, Admin, x()),
    c!("SMEMBERS", 2, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(MemberReply), x().syntax(Syntax::Set)),
    c!("SMISMEMBER", -3, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(MembersFrom(2)), x()),
    c!("SMOVE", 4, 1, 2, 1, false, keys(&[ks(RW | ACCESS | DELETE, Index(1), Range(0, 1, 0)), ks(RW | INSERT, Index(2), Range(0, 1, 0))]), Shared, Encrypt(MemberAt(3)), x()),
    c!("SORT", -2, 1, 1, 1, true, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0)), ks(RO | ACCESS, BeginSearch::Unknown, FindKeys::Unknown), ks(OW | UPDATE, BeginSearch::Unknown, FindKeys::Unknown)]).proc(KeysProc::Sort), Shared, Reject("sorting compares values, which Redis holds only as ciphertext"), x()),
    c!("SORT_RO", -2, 1, 1, 1, true, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0)), ks(RO | ACCESS, BeginSearch::Unknown, FindKeys::Unknown)]).proc(KeysProc::SortRo), Shared, Reject("sorting compares values, which Redis holds only as ciphertext"), x()),
    c!("SPOP", -2, 1, 1, 1, false, keys(&[ks(RW | ACCESS | DELETE, Index(1), Range(0, 1, 0))]), Shared, Encrypt(MemberReply), x().syntax(Syntax::SetPick)),
    c!("SPUBLISH", 3, 1, 1, 1, false, keys(&[ks(NOT_KEY, Index(1), Range(0, 1, 0))]), Shared, Encrypt(Publish), x().needs(Capability::PubSub).syntax(Syntax::ShardPublish)),
    c!("SRANDMEMBER", -2, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(MemberReply), x().syntax(Syntax::SetPick)),
    c!("SREM", -3, 1, 1, 1, false, keys(&[ks(RW | DELETE, Index(1), Range(0, 1, 0))]), Shared, Encrypt(MembersFrom(2)), x()),
    c!("SSCAN", -3, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(SetScan), x()),
    c!("SSUBSCRIBE", -2, 1, -1, 1, false, keys(&[ks(NOT_KEY, Index(1), Range(-1, 1, 0))]), Subscribe(Subscription::SSubscribe), Pass, x()),
    c!("STRLEN", 2, 1, 1, 1, false, keys(&[ks(RO, Index(1), Range(0, 1, 0))]), Shared, Emulate(Strlen), x()),
    c!("SUBSCRIBE", -2, 0, 0, 0, false, keys(&[]), Subscribe(Subscription::Subscribe), Pass, x()),
    c!("SUBSTR", 4, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Emulate(GetRange), x()),
    c!("SUNION", -2, 1, -1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(-1, 1, 0))]), Shared, Encrypt(MemberReply), x().syntax(Syntax::Set)),
    c!("SUNIONSTORE", -3, 1, -1, 1, false, keys(&[ks(OW | UPDATE, Index(1), Range(0, 1, 0)), ks(RO | ACCESS, Index(2), Range(-1, 1, 0))]), Shared, Pass, x()),
    c!("SUNSUBSCRIBE", -1, 1, -1, 1, false, keys(&[ks(NOT_KEY, Index(1), Range(-1, 1, 0))]), Subscribe(Subscription::SUnsubscribe), Pass, x()),
    c!("SWAPDB", 3, 0, 0, 0, false, keys(&[]), Shared, Admin, x().needs(Capability::Databases).follows(Follow::Everything)),
    c!("SYNC", 1, 0, 0, 0, false, keys(&[]), Shared, Reject("replication streams raw upstream data"), x()),
    c!("TIME", 1, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("TOUCH", -2, 1, -1, 1, false, keys(&[ks(RO, Index(1), Range(-1, 1, 0))]), Shared, Pass, x()),
    c!("TTL", 2, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("TYPE", 2, 1, 1, 1, false, keys(&[ks(RO, Index(1), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("UNLINK", -2, 1, -1, 1, false, keys(&[ks(RM | DELETE, Index(1), Range(-1, 1, 0))]), Shared, Pass, x().follows(Follow::Delete)),
    c!("UNSUBSCRIBE", -1, 0, 0, 0, false, keys(&[]), Subscribe(Subscription::Unsubscribe), Pass, x()),
    c!("UNWATCH", 1, 0, 0, 0, false, keys(&[]), Transaction(Unwatch), Pass, x()),
    c!("WAIT", 3, 0, 0, 0, false, keys(&[]), Blocking, Pass, x()),
    c!("WAITAOF", 4, 0, 0, 0, false, keys(&[]), Blocking, Pass, x()),
    c!("WATCH", -2, 1, -1, 1, false, keys(&[ks(RO, Index(1), Range(-1, 1, 0))]), Transaction(Watch), Pass, x()),
    c!("XACK", -4, 1, 1, 1, false, keys(&[ks(RW | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("XADD", -5, 1, 1, 1, false, keys(&[ks(RW | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Encrypt(XAdd), x()),
    c!("XAUTOCLAIM", -6, 1, 1, 1, false, keys(&[ks(RW | DELETE, Index(1), Range(0, 1, 0))]), Shared, Encrypt(XAutoClaim), x()),
    c!("XCLAIM", -6, 1, 1, 1, false, keys(&[ks(RW | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Encrypt(XEntries), x()),
    c!("XDEL", -3, 1, 1, 1, false, keys(&[ks(RW | DELETE, Index(1), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("XGROUP", -2, 0, 0, 0, false, keys(&[]), Container, Pass, x()),
    c!("XGROUP|CREATE", -5, 2, 2, 1, false, keys(&[ks(RW | INSERT, Index(2), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("XGROUP|CREATECONSUMER", 5, 2, 2, 1, false, keys(&[ks(RW | INSERT, Index(2), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("XGROUP|DELCONSUMER", 5, 2, 2, 1, false, keys(&[ks(RW | DELETE, Index(2), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("XGROUP|DESTROY", 4, 2, 2, 1, false, keys(&[ks(RW | DELETE, Index(2), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("XGROUP|HELP", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("XGROUP|SETID", -5, 2, 2, 1, false, keys(&[ks(RW | UPDATE, Index(2), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("XINFO", -2, 0, 0, 0, false, keys(&[]), Container, Pass, x()),
    c!("XINFO|CONSUMERS", 4, 2, 2, 1, false, keys(&[ks(RO | ACCESS, Index(2), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("XINFO|GROUPS", 3, 2, 2, 1, false, keys(&[ks(RO | ACCESS, Index(2), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("XINFO|HELP", 2, 0, 0, 0, false, keys(&[]), Shared, Pass, x()),
    c!("XINFO|STREAM", -3, 2, 2, 1, false, keys(&[ks(RO | ACCESS, Index(2), Range(0, 1, 0))]), Shared, Encrypt(XInfoStream), x()),
    c!("XLEN", 2, 1, 1, 1, false, keys(&[ks(RO, Index(1), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("XPENDING", -3, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("XRANGE", -4, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(XEntries), x().nulls(Array)),
    c!("XREAD", -4, 0, 0, 0, true, keys(&[ks(RO | ACCESS, Keyword("STREAMS", 1), Range(-1, 1, 2))]).proc(KeysProc::XRead), BlockingWithOption, Encrypt(XRead), x().nulls(Array)),
    c!("XREADGROUP", -7, 0, 0, 0, true, keys(&[ks(RO | ACCESS, Keyword("STREAMS", 4), Range(-1, 1, 2))]).proc(KeysProc::XRead), BlockingWithOption, Encrypt(XRead), x().nulls(Array)),
    c!("XREVRANGE", -4, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(XEntries), x().nulls(Array)),
    c!("XSETID", -3, 1, 1, 1, false, keys(&[ks(RW | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("XTRIM", -4, 1, 1, 1, false, keys(&[ks(RW | DELETE, Index(1), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("ZADD", -4, 1, 1, 1, false, keys(&[ks(RW | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Encrypt(ZAdd), x()),
    c!("ZCARD", 2, 1, 1, 1, false, keys(&[ks(RO, Index(1), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("ZCOUNT", 4, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("ZDIFF", -3, 0, 0, 0, true, keys(&[ks(RO | ACCESS, Index(1), KeyNum(0, 1, 1))]).proc(KeysProc::NumKeys { store: 0, count: 1, first: 2 }), Shared, Encrypt(MemberReply), x().syntax(Syntax::ZCombine { weighted: false })),
    c!("ZDIFFSTORE", -4, 1, 1, 1, true, keys(&[ks(OW | UPDATE, Index(1), Range(0, 1, 0)), ks(RO | ACCESS, Index(2), KeyNum(0, 1, 1))]).proc(KeysProc::NumKeys { store: 1, count: 2, first: 3 }), Shared, Pass, x()),
    c!("ZINCRBY", 4, 1, 1, 1, false, keys(&[ks(RW | ACCESS | UPDATE, Index(1), Range(0, 1, 0))]), Shared, Encrypt(MemberAt(3)), x()),
    c!("ZINTER", -3, 0, 0, 0, true, keys(&[ks(RO | ACCESS, Index(1), KeyNum(0, 1, 1))]).proc(KeysProc::NumKeys { store: 0, count: 1, first: 2 }), Shared, Encrypt(MemberReply), x().syntax(Syntax::ZCombine { weighted: true })),
    c!("ZINTERCARD", -3, 0, 0, 0, true, keys(&[ks(RO | ACCESS, Index(1), KeyNum(0, 1, 1))]).proc(KeysProc::NumKeys { store: 0, count: 1, first: 2 }), Shared, Pass, x()),
    c!("ZINTERSTORE", -4, 1, 1, 1, true, keys(&[ks(OW | UPDATE, Index(1), Range(0, 1, 0)), ks(RO | ACCESS, Index(2), KeyNum(0, 1, 1))]).proc(KeysProc::NumKeys { store: 1, count: 2, first: 3 }), Shared, Pass, x()),
    c!("ZLEXCOUNT", 4, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Reject(LEX_RANGE), x()),
    c!("ZMPOP", -4, 0, 0, 0, true, keys(&[ks(RW | ACCESS | DELETE, Index(1), KeyNum(0, 1, 1))]).proc(KeysProc::NumKeys { store: 0, count: 1, first: 2 }), Shared, Encrypt(ZMultiPop), x().nulls(Array).syntax(Syntax::ZMultiPop { numkeys_at: 1 })),
    c!("ZMSCORE", -3, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(MembersFrom(2)), x()),
    c!("ZPOPMAX", -2, 1, 1, 1, false, keys(&[ks(RW | ACCESS | DELETE, Index(1), Range(0, 1, 0))]), Shared, Encrypt(MemberReply), x().syntax(Syntax::ZPop(Direction::Descending))),
    c!("ZPOPMIN", -2, 1, 1, 1, false, keys(&[ks(RW | ACCESS | DELETE, Index(1), Range(0, 1, 0))]), Shared, Encrypt(MemberReply), x().syntax(Syntax::ZPop(Direction::Ascending))),
    c!("ZRANDMEMBER", -2, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(MemberReply), x().syntax(Syntax::ZRandMember)),
    c!("ZRANGE", -4, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(MemberReply), x().syntax(Syntax::ZRange(RangeSyntax { first: 4, store: false, kind: None, direction: None }))),
    c!("ZRANGEBYLEX", -4, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Reject(LEX_RANGE), x().syntax(Syntax::ZRange(RangeSyntax { first: 4, store: false, kind: Some(RangeKind::Lex), direction: Some(Direction::Ascending) }))),
    c!("ZRANGEBYSCORE", -4, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(MemberReply), x().syntax(Syntax::ZRange(RangeSyntax { first: 4, store: false, kind: Some(RangeKind::Score), direction: Some(Direction::Ascending) }))),
    c!("ZRANGESTORE", -5, 1, 2, 1, false, keys(&[ks(OW | UPDATE, Index(1), Range(0, 1, 0)), ks(RO | ACCESS, Index(2), Range(0, 1, 0))]), Shared, Encrypt(RangeStore), x().syntax(Syntax::ZRange(RangeSyntax { first: 5, store: true, kind: None, direction: None }))),
    c!("ZRANK", 3, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Emulate(Rank { rev: false }), x()),
    c!("ZREM", -3, 1, 1, 1, false, keys(&[ks(RW | DELETE, Index(1), Range(0, 1, 0))]), Shared, Encrypt(MembersFrom(2)), x()),
    c!("ZREMRANGEBYLEX", 4, 1, 1, 1, false, keys(&[ks(RW | DELETE, Index(1), Range(0, 1, 0))]), Shared, Reject(LEX_RANGE), x()),
    c!("ZREMRANGEBYRANK", 4, 1, 1, 1, false, keys(&[ks(RW | DELETE, Index(1), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("ZREMRANGEBYSCORE", 4, 1, 1, 1, false, keys(&[ks(RW | DELETE, Index(1), Range(0, 1, 0))]), Shared, Pass, x()),
    c!("ZREVRANGE", -4, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(MemberReply), x().syntax(Syntax::ZRange(RangeSyntax { first: 4, store: false, kind: Some(RangeKind::Rank), direction: Some(Direction::Descending) }))),
    c!("ZREVRANGEBYLEX", -4, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Reject(LEX_RANGE), x().syntax(Syntax::ZRange(RangeSyntax { first: 4, store: false, kind: Some(RangeKind::Lex), direction: Some(Direction::Descending) }))),
    c!("ZREVRANGEBYSCORE", -4, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(MemberReply), x().syntax(Syntax::ZRange(RangeSyntax { first: 4, store: false, kind: Some(RangeKind::Score), direction: Some(Direction::Descending) }))),
    c!("ZREVRANK", 3, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Emulate(Rank { rev: true }), x()),
    c!("ZSCAN", -3, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(ZScan), x()),
    c!("ZSCORE", 3, 1, 1, 1, false, keys(&[ks(RO | ACCESS, Index(1), Range(0, 1, 0))]), Shared, Encrypt(MembersFrom(2)), x()),
    c!("ZUNION", -3, 0, 0, 0, true, keys(&[ks(RO | ACCESS, Index(1), KeyNum(0, 1, 1))]).proc(KeysProc::NumKeys { store: 0, count: 1, first: 2 }), Shared, Encrypt(MemberReply), x().syntax(Syntax::ZCombine { weighted: true })),
    c!("ZUNIONSTORE", -4, 1, 1, 1, true, keys(&[ks(OW | UPDATE, Index(1), Range(0, 1, 0)), ks(RO | ACCESS, Index(2), KeyNum(0, 1, 1))]).proc(KeysProc::NumKeys { store: 1, count: 2, first: 3 }), Shared, Pass, x()),
];

// Remarks shared by several rows of NOTES. Members are ciphertext upstream,
// so the upstream orders equal scores by ciphertext; sealcache restores the
// order in the reply, but where a range or a pop ends among members of one
// score, the upstream has already picked which of them are in it.
const TIES: &str = "members of equal score come in plaintext order, as Redis orders them";
const RANK_RANGE_TIES: &str = "members of equal score come in plaintext order, as Redis orders them; when the rank range starts or ends among members that share one score, which of those members are included can differ from Redis (the others are exact)";
const SCORE_RANGE_TIES: &str = "members of equal score come in plaintext order, as Redis orders them; with LIMIT, when the window starts or ends among members that share one score, which of those members are included can differ from Redis";
const POP_TIES: &str = "popped members come in Redis's order; when several members share the score at the end being popped and not all of them are popped, which of them are popped can differ from Redis";
const GEO_TIES: &str = "members at exactly the same position come in plaintext order, as Redis orders them; when COUNT stops short of all matches, which members at one position are returned or stored, and their order, can differ from Redis";
const MATCH_AFTER_DECRYPTION: &str = "MATCH is applied by sealcache to the decrypted members with Redis's glob rules, after the upstream has picked them (as Redis filters after picking), so cursors and COUNT keep their meaning";
const EMULATED_RANK: &str = "exact among equal scores; refused inside MULTI, like RENAME and COPY (the other emulated commands are computed at EXEC)";

/// Remarks for `docs/commands.md` where the policy alone does not tell the
/// whole story. Sorted by name; every name has a row in [`COMMANDS`].
pub static NOTES: &[(&str, &str)] = &[
    ("BZMPOP", POP_TIES),
    ("BZPOPMAX", POP_TIES),
    ("BZPOPMIN", POP_TIES),
    (
        "EXEC",
        "each reply is decrypted by the rule of the command that was queued",
    ),
    ("GEORADIUS", GEO_TIES),
    ("GEORADIUSBYMEMBER", GEO_TIES),
    ("GEORADIUSBYMEMBER_RO", GEO_TIES),
    ("GEORADIUS_RO", GEO_TIES),
    ("GEOSEARCH", GEO_TIES),
    ("GEOSEARCHSTORE", GEO_TIES),
    ("HDEL", "field names stay plaintext"),
    ("HEXISTS", "field names stay plaintext"),
    ("HKEYS", "field names stay plaintext"),
    (
        "HSCAN",
        "field names stay plaintext, so Redis applies MATCH exactly",
    ),
    ("KEYS", "key names stay plaintext, so patterns work"),
    (
        "MOVE",
        "values are not bound to the database index, so they move unchanged",
    ),
    ("MULTI", "each queued command is encrypted as it is queued"),
    ("PSUBSCRIBE", "messages are decrypted on delivery"),
    (
        "SCAN",
        "key names stay plaintext, so Redis applies MATCH and TYPE exactly",
    ),
    ("SSCAN", MATCH_AFTER_DECRYPTION),
    ("SSUBSCRIBE", "messages are decrypted on delivery"),
    ("SUBSCRIBE", "messages are decrypted on delivery"),
    ("SWAPDB", "values are not bound to the database index"),
    ("ZDIFF", TIES),
    ("ZINTER", TIES),
    ("ZMPOP", POP_TIES),
    ("ZPOPMAX", POP_TIES),
    ("ZPOPMIN", POP_TIES),
    (
        "ZRANDMEMBER",
        "a count at least the size of the set returns the whole set in Redis's order; other counts pick at random, as Redis does",
    ),
    (
        "ZRANGE",
        "members of equal score come in plaintext order, as Redis orders them; when a rank range or LIMIT starts or ends among members that share one score, which of those members are included can differ from Redis (the others are exact); BYLEX is refused: it would compare encrypted members",
    ),
    ("ZRANGEBYSCORE", SCORE_RANGE_TIES),
    (
        "ZRANGESTORE",
        "when a rank range or LIMIT starts or ends among members that share one score, which of those members are stored can differ from Redis",
    ),
    ("ZRANK", EMULATED_RANK),
    (
        "ZREMRANGEBYRANK",
        "when the rank range starts or ends among members that share one score, which of those members are removed can differ from Redis",
    ),
    ("ZREVRANGE", RANK_RANGE_TIES),
    ("ZREVRANGEBYSCORE", SCORE_RANGE_TIES),
    ("ZREVRANK", EMULATED_RANK),
    (
        "ZSCAN",
        "MATCH is applied by sealcache to the decrypted members with Redis's glob rules, after the upstream has picked them (as Redis filters after picking), so cursors and COUNT keep their meaning; members of equal score in one reply come in plaintext order",
    ),
    ("ZUNION", TIES),
];

/// The remark for a table row, if any.
pub fn note(name: &str) -> Option<&'static str> {
    NOTES
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| NOTES[i].1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::lookup;
    use crate::commands::spec::{Dispatch, Emulation, Policy, ValueRule};

    fn policy(name: &str) -> Policy {
        match name.split_once('|') {
            Some((c, s)) => lookup(c.as_bytes(), Some(s.as_bytes())),
            None => lookup(name.as_bytes(), None),
        }
        .unwrap_or_else(|| panic!("{name} has no row"))
        .policy
    }

    /// Exhaustive, so a new variant fails to compile here until a row uses it.
    fn rule_index(rule: ValueRule) -> usize {
        match rule {
            StringSet => 0,
            StringValueAt(_) => 1,
            StringSwap => 2,
            StringGet => 3,
            MGet => 4,
            MSet => 5,
            HashSet => 6,
            HashGet => 7,
            HashMGet => 8,
            HashGetAll => 9,
            HashVals => 10,
            HashRandField => 11,
            HashScan => 12,
            ListPush => 13,
            ListSet => 14,
            ListReply => 15,
            ListKeyedPop => 16,
            ListMultiPop => 17,
            MembersFrom(_) => 18,
            MemberAt(_) => 19,
            GeoDist => 20,
            MemberReply => 21,
            GeoSearch => 22,
            SetScan => 23,
            ZAdd => 24,
            ZScan => 25,
            ZKeyedPop => 26,
            ZMultiPop => 27,
            GeoAdd => 28,
            XAdd => 29,
            XEntries => 30,
            XRead => 31,
            XAutoClaim => 32,
            XInfoStream => 33,
            Publish => 34,
            RangeStore => 35,
        }
    }
    const RULES: usize = 36;

    fn emulation_index(emulation: Emulation) -> usize {
        match emulation {
            Session => 0,
            IncrBy(_) => 1,
            IncrByFloat => 2,
            HashIncrBy => 3,
            HashIncrByFloat => 4,
            Append => 5,
            Strlen => 6,
            GetRange => 7,
            SetRange => 8,
            HashStrlen => 9,
            Rename { .. } => 10,
            Copy => 11,
            Rank { .. } => 12,
        }
    }
    const EMULATIONS: usize = 13;

    #[test]
    fn policies_fit_dispatch() {
        for c in COMMANDS {
            let session = c.policy == Emulate(Session);
            assert_eq!(
                matches!(c.dispatch, Dispatch::Local(_)),
                session,
                "{}: Local rows, and only they, are Emulate(Session)",
                c.name
            );
            match c.dispatch {
                Dispatch::Container | Dispatch::Transaction(_) | Dispatch::Subscribe(_) => {
                    assert_eq!(c.policy, Pass, "{}: its dispatch decides, so Pass", c.name)
                }
                Dispatch::Blocking | Dispatch::BlockingWithOption => assert!(
                    !matches!(c.policy, Emulate(_)),
                    "{}: an emulation cannot block",
                    c.name
                ),
                Dispatch::Shared | Dispatch::Local(_) => {}
            }
        }
    }

    #[test]
    fn every_rule_and_emulation_is_used() {
        let mut rules = [false; RULES];
        let mut emulations = [false; EMULATIONS];
        for c in COMMANDS {
            match c.policy {
                Encrypt(rule) => rules[rule_index(rule)] = true,
                Emulate(e) => emulations[emulation_index(e)] = true,
                _ => {}
            }
        }
        let unused: Vec<usize> = (0..RULES).filter(|&i| !rules[i]).collect();
        assert!(
            unused.is_empty(),
            "ValueRule indices without a row: {unused:?}"
        );
        let unused: Vec<usize> = (0..EMULATIONS).filter(|&i| !emulations[i]).collect();
        assert!(
            unused.is_empty(),
            "Emulation indices without a row: {unused:?}"
        );
    }

    /// The commands each ValueRule's doc comment names use that rule.
    #[test]
    fn rules_cover_the_commands_their_contract_names() {
        let contract: &[(&str, Policy)] = &[
            ("SET", Encrypt(StringSet)),
            ("SETNX", Encrypt(StringValueAt(2))),
            ("SETEX", Encrypt(StringValueAt(3))),
            ("PSETEX", Encrypt(StringValueAt(3))),
            ("GETSET", Encrypt(StringSwap)),
            ("GET", Encrypt(StringGet)),
            ("GETDEL", Encrypt(StringGet)),
            ("GETEX", Encrypt(StringGet)),
            ("MGET", Encrypt(MGet)),
            ("MSET", Encrypt(MSet)),
            ("MSETNX", Encrypt(MSet)),
            ("HSET", Encrypt(HashSet)),
            ("HMSET", Encrypt(HashSet)),
            ("HSETNX", Encrypt(HashSet)),
            ("HGET", Encrypt(HashGet)),
            ("HMGET", Encrypt(HashMGet)),
            ("HGETALL", Encrypt(HashGetAll)),
            ("HVALS", Encrypt(HashVals)),
            ("HRANDFIELD", Encrypt(HashRandField)),
            ("HSCAN", Encrypt(HashScan)),
            ("LPUSH", Encrypt(ListPush)),
            ("RPUSH", Encrypt(ListPush)),
            ("LPUSHX", Encrypt(ListPush)),
            ("RPUSHX", Encrypt(ListPush)),
            ("LSET", Encrypt(ListSet)),
            ("LPOP", Encrypt(ListReply)),
            ("RPOP", Encrypt(ListReply)),
            ("LRANGE", Encrypt(ListReply)),
            ("LINDEX", Encrypt(ListReply)),
            ("LMOVE", Encrypt(ListReply)),
            ("RPOPLPUSH", Encrypt(ListReply)),
            ("BLMOVE", Encrypt(ListReply)),
            ("BRPOPLPUSH", Encrypt(ListReply)),
            ("BLPOP", Encrypt(ListKeyedPop)),
            ("BRPOP", Encrypt(ListKeyedPop)),
            ("LMPOP", Encrypt(ListMultiPop)),
            ("BLMPOP", Encrypt(ListMultiPop)),
            ("SADD", Encrypt(MembersFrom(2))),
            ("SREM", Encrypt(MembersFrom(2))),
            ("SISMEMBER", Encrypt(MembersFrom(2))),
            ("ZREM", Encrypt(MembersFrom(2))),
            ("ZSCORE", Encrypt(MembersFrom(2))),
            ("SMOVE", Encrypt(MemberAt(3))),
            ("ZINCRBY", Encrypt(MemberAt(3))),
            ("GEODIST", Encrypt(GeoDist)),
            ("GEOSEARCH", Encrypt(GeoSearch)),
            ("GEOSEARCHSTORE", Encrypt(GeoSearch)),
            ("GEORADIUSBYMEMBER", Encrypt(GeoSearch)),
            ("SSCAN", Encrypt(SetScan)),
            ("ZADD", Encrypt(ZAdd)),
            ("ZSCAN", Encrypt(ZScan)),
            ("BZPOPMIN", Encrypt(ZKeyedPop)),
            ("BZPOPMAX", Encrypt(ZKeyedPop)),
            ("ZMPOP", Encrypt(ZMultiPop)),
            ("BZMPOP", Encrypt(ZMultiPop)),
            ("GEOADD", Encrypt(GeoAdd)),
            ("XADD", Encrypt(XAdd)),
            ("XRANGE", Encrypt(XEntries)),
            ("XREVRANGE", Encrypt(XEntries)),
            ("XCLAIM", Encrypt(XEntries)),
            ("XREAD", Encrypt(XRead)),
            ("XREADGROUP", Encrypt(XRead)),
            ("XAUTOCLAIM", Encrypt(XAutoClaim)),
            ("XINFO|STREAM", Encrypt(XInfoStream)),
            ("PUBLISH", Encrypt(Publish)),
            ("SPUBLISH", Encrypt(Publish)),
            ("INCR", Emulate(IncrBy(One))),
            ("DECR", Emulate(IncrBy(MinusOne))),
            ("INCRBY", Emulate(IncrBy(Argument))),
            ("DECRBY", Emulate(IncrBy(NegatedArgument))),
            ("INCRBYFLOAT", Emulate(IncrByFloat)),
            ("HINCRBY", Emulate(HashIncrBy)),
            ("HINCRBYFLOAT", Emulate(HashIncrByFloat)),
            ("APPEND", Emulate(Append)),
            ("STRLEN", Emulate(Strlen)),
            ("GETRANGE", Emulate(GetRange)),
            ("SUBSTR", Emulate(GetRange)),
            ("SETRANGE", Emulate(SetRange)),
            ("HSTRLEN", Emulate(HashStrlen)),
            ("RENAME", Emulate(Rename { nx: false })),
            ("RENAMENX", Emulate(Rename { nx: true })),
            ("COPY", Emulate(Copy)),
            ("ZRANK", Emulate(Rank { rev: false })),
            ("ZREVRANK", Emulate(Rank { rev: true })),
        ];
        for (name, expected) in contract {
            assert_eq!(policy(name), *expected, "{name}");
        }
    }

    #[test]
    fn spot_checks() {
        assert_eq!(policy("GET"), Encrypt(StringGet));
        assert_eq!(policy("HVALS"), Encrypt(HashVals));
        assert!(matches!(policy("LPOS"), Reject(_)));
        assert_eq!(policy("FLUSHALL"), Admin);
        assert_eq!(policy("INCR"), Emulate(IncrBy(One)));
        assert_eq!(policy("MOVE"), Pass);
        // Keys and field names stay plaintext.
        for name in [
            "DEL", "EXISTS", "EXPIRE", "TTL", "TYPE", "SCAN", "KEYS", "HKEYS", "HDEL",
        ] {
            assert_eq!(policy(name), Pass, "{name}");
        }
        assert_eq!(policy("ZRANGE"), Encrypt(MemberReply));
        assert_eq!(policy("GEOPOS"), Encrypt(MembersFrom(2)));
    }

    /// Issue 3, criterion 7: rejected, or admin (rejected unless allowed).
    #[test]
    fn unsafe_commands_are_rejected() {
        let rejected = [
            "EVAL",
            "EVALSHA",
            "EVAL_RO",
            "EVALSHA_RO",
            "FCALL",
            "FCALL_RO",
            "SCRIPT|LOAD",
            "FUNCTION|LOAD",
            "SORT",
            "SORT_RO",
            "BITOP",
            "SETBIT",
            "GETBIT",
            "BITCOUNT",
            "BITPOS",
            "BITFIELD",
            "BITFIELD_RO",
            "LCS",
            "ZRANGEBYLEX",
            "ZREVRANGEBYLEX",
            "ZLEXCOUNT",
            "ZREMRANGEBYLEX",
            "LPOS",
            "LREM",
            "LINSERT",
            "DUMP",
            "RESTORE",
            "RESTORE-ASKING",
            "MIGRATE",
            "DEBUG",
            "MONITOR",
        ];
        for name in rejected {
            assert!(
                matches!(policy(name), Reject(_)),
                "{name}: {:?}",
                policy(name)
            );
        }
        let admin = [
            "FLUSHALL",
            "FLUSHDB",
            "CONFIG|SET",
            "SHUTDOWN",
            "REPLICAOF",
            "SLAVEOF",
            "ACL|SETUSER",
            "SWAPDB",
            "SCRIPT|FLUSH",
            "FUNCTION|FLUSH",
            "MODULE|LOAD",
        ];
        for name in admin {
            assert_eq!(policy(name), Admin, "{name}");
        }
    }

    /// Reasons complete `… is not available on encrypted data: <reason>`.
    #[test]
    fn reject_reasons_read_as_one_clause() {
        for c in COMMANDS {
            if let Reject(reason) = c.policy {
                assert!(
                    reason.starts_with(|ch: char| ch.is_ascii_alphabetic())
                        && !reason.ends_with('.')
                        && !reason.contains('\n')
                        && reason.len() <= 100,
                    "{}: {reason:?}",
                    c.name
                );
            }
        }
    }

    #[test]
    fn value_positions_fit_the_arity() {
        for c in COMMANDS {
            let min_args = c.arity.unsigned_abs() as u8;
            match c.policy {
                Encrypt(StringValueAt(i) | MemberAt(i)) => {
                    assert!(i >= 1 && i < min_args, "{}: argument {i}", c.name)
                }
                // Variadic: the members may be absent (GEOPOS key).
                Encrypt(MembersFrom(i)) => {
                    assert!(i >= 1 && i <= min_args, "{}: argument {i}", c.name)
                }
                _ => {}
            }
        }
    }

    #[test]
    fn notes_are_sorted_and_name_rows() {
        for pair in NOTES.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
        for (name, text) in NOTES {
            assert!(
                COMMANDS.iter().any(|c| c.name == *name),
                "{name} has no row"
            );
            assert_eq!(note(name), Some(*text));
        }
        assert_eq!(note("GET"), None);
    }
}
