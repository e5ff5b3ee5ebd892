//! The command scripts of the behaviour suite, one per area (syntax in
//! [`super::script`]). `tests/it/memory_store.rs` runs the same scripts on
//! the memory engine alone.

use sealcache::backend::Capability;

use super::script::Script;

pub const STRINGS: Script = Script {
    name: "strings",
    needs: &[],
    text: "
    GET s
    SET s v
    GET s
    SET s w NX
    SET s w XX GET
    SET s x NX XX
    SET s x EX 0
    SET s x EX abc
    SET s x PX -5
    SET s x EX 10 PX 10
    SET s x EX 10 KEEPTTL
    SET s x KEEPTTL GET
    SET s x EX 100
    TTL s
    SET s y KEEPTTL
    TTL s
    SET s z EXAT 4102444800
    EXPIRETIME s
    SET s z PXAT 4102444800123
    PEXPIRETIME s
    SET s z
    TTL s
    PTTL s
    PTTL nothing
    SET s x FOO
    SET s x EX 9223372036854775807
    SET n2 v NX GET
    SETNX s a
    SETNX t a
    SETEX e 100 v
    TTL e
    SETEX e 0 v
    SETEX e x v
    PSETEX e 100000 v
    TTL e
    PSETEX e -1 v
    GETSET s new
    GETSET missing new
    GETDEL s
    GETDEL s
    GETEX t
    GETEX t EX 100
    TTL t
    GETEX t PERSIST
    TTL t
    GETEX t EX 10 PX 10
    GETEX t NX
    GETEX t EX 0
    GETEX t PXAT 1
    EXISTS t
    GETEX missing EX 10
    MSET a 1 b 2 c 3
    MSET a 1 b
    MGET a b c nope
    MSETNX a 1 z 2
    MSETNX y 1 z 2
    MGET y z
    LPUSH list x
    GET list
    MGET list a
    GETSET list v
    SET big 9223372036854775807
    INCR big
    DECR big
    INCRBY a 10
    DECRBY a 3
    DECRBY a -9223372036854775808
    INCR s0
    INCRBY a x
    SET f 1.5
    INCR f
    APPEND ap hello
    APPEND ap world
    STRLEN ap
    STRLEN nope
    GETRANGE ap 0 4
    GETRANGE ap -5 -1
    GETRANGE ap -1 -5
    GETRANGE ap 100 200
    GETRANGE nope 0 -1
    SUBSTR ap 1 3
    SETRANGE ap 5 _
    GET ap
    SETRANGE sr 3 ab
    GET sr
    SETRANGE sr -1 x
    SETRANGE sr 0 \"\"
    STRLEN list
    GET
    SET k
    GETEX
",
};

pub const KEYS: Script = Script {
    name: "keys",
    needs: &[],
    text: "
    SET a 1
    SET b 2
    HSET h f v
    LPUSH l x
    SADD s m
    ZADD z 1 m
    XADD x 1-1 f v
    TYPE a
    TYPE h
    TYPE l
    TYPE s
    TYPE z
    TYPE x
    TYPE nope
    EXISTS a b nope a
    TOUCH a nope
    DEL a nope a
    UNLINK b
    KEYS *
    KEYS [hl]
    KEYS nothing*
    DBSIZE
    SCAN 0 COUNT 1000
    SCAN 0 COUNT 1000 MATCH [sz]
    SCAN 0 COUNT 1000 TYPE zset
    SCAN 0 COUNT 1000 TYPE nonsense
    SCAN 0 COUNT 0
    SCAN 0 FOO
    SCAN x
    SCAN -1 MATCH nothing COUNT 1000
    EXPIRE h 100
    TTL h
    EXPIRE h 100 NX
    EXPIRE h 50 GT
    EXPIRE h 200 GT
    EXPIRE h 50 LT
    TTL h
    EXPIRE h 10 XX LT
    EXPIRE s 10 XX
    EXPIRE s 10 GT
    EXPIRE s 10 LT
    TTL s
    EXPIRE s 10 NX XX
    EXPIRE s 10 GT LT
    EXPIRE s 10 FOO
    EXPIRE s abc
    EXPIRE s 9223372036854775807
    PEXPIRE s 9223372036854775807
    EXPIREAT s 9223372036854775807
    EXPIRE nope 10
    PEXPIRE l 100000
    TTL l
    PEXPIREAT l 4102444800123
    PEXPIRETIME l
    EXPIRETIME l
    EXPIREAT l 4102444800
    PEXPIRETIME l
    EXPIRETIME nope
    PERSIST l
    PERSIST l
    PERSIST nope
    EXPIRE l -1
    EXISTS l
    EXPIREAT z 1
    EXISTS z
    RENAME nope x2
    RENAME s s
    RENAMENX s s
    EXPIRE s 100
    RENAME s s2
    TTL s2
    RENAMENX h s2
    RENAMENX s2 s3
    COPY s3 s3
    COPY s3 c1
    COPY s3 c1
    COPY s3 c1 REPLACE
    COPY s3 c2 DB 1
    COPY s3 c2 DB 1
    COPY s3 c2 DB 99
    COPY s3 c2 DB x
    COPY s3 c2 FOO
    COPY nope c2
    TTL c1
    SMEMBERS c1
    MOVE c1 1
    MOVE c1 1
    EXISTS c1
    MOVE h 0
    MOVE h 99
    MOVE h x
    MOVE nope 1
    FLUSHDB FOO
    FLUSHDB ASYNC
    DBSIZE
    RANDOMKEY
    SET only 1
    RANDOMKEY
    FLUSHALL SYNC
    DBSIZE
    PING
    PING hello
    PING a b
    ECHO hi
    DEL
    TYPE
",
};

/// Databases other than 0 (SELECT), on kinds that have them.
pub const DATABASES: Script = Script {
    name: "databases",
    needs: &[Capability::Databases],
    text: "
    SET in0 v
    SELECT 1
    SET in1 v
    DBSIZE
    EXISTS in0
    SELECT 0
    EXISTS in1
    SELECT 16
    SELECT -1
    SELECT x
    SELECT
",
};

pub const HASHES: Script = Script {
    name: "hashes",
    needs: &[],
    text: "
    HSET h a 1 b 2 c 3
    HSET h a 9 d 4
    HSET h a
    HMSET h e 5
    HGET h a
    HGET h nope
    HGET nope a
    HMGET h a nope b
    HMGET nope a
    HGETALL h
    HGETALL nope
    HKEYS h
    HVALS h
    HLEN h
    HLEN nope
    HEXISTS h a
    HEXISTS h nope
    HSETNX h a 1
    HSETNX h z 1
    HSTRLEN h a
    HSTRLEN h nope
    HINCRBY h a 5
    HINCRBY h new -3
    HINCRBY h a x
    HSET h str abc
    HINCRBY h str 1
    HSET h max 9223372036854775807
    HINCRBY h max 1
    HDEL h a b nope
    HDEL nope a
    HSCAN h 0
    HSCAN h 0 MATCH [de]
    HSCAN h 0 COUNT 0
    HSCAN h x
    HSCAN nope 0
    HSET one f v
    HRANDFIELD one
    HRANDFIELD one 1
    HRANDFIELD one 5 WITHVALUES
    HRANDFIELD one -2
    HRANDFIELD one -2 WITHVALUES
    HRANDFIELD one 0
    HRANDFIELD one 1 FOO
    HRANDFIELD one x
    HRANDFIELD one x FOO
    HRANDFIELD one -9223372036854775808
    HRANDFIELD one 9223372036854775807 WITHVALUES
    HRANDFIELD one 4611686018427387904 WITHVALUES
    HRANDFIELD nosuchhash 4611686018427387904 WITHVALUES
    HRANDFIELD nope
    HRANDFIELD nope 3
    HDEL h c d e z new str max
    EXISTS h
    SET s v
    HGET s a
    HSET s a b
    HGETALL s
    HSCAN s 0
",
};

pub const SETS: Script = Script {
    name: "sets",
    needs: &[],
    text: "
    SADD a 1 2 3 4
    SADD a 3 5
    SADD b 3 4 x y
    SADD c z
    SMEMBERS a
    SMEMBERS nope
    SCARD a
    SCARD nope
    SISMEMBER a 3
    SISMEMBER a 9
    SMISMEMBER a 1 9 2
    SREM a 5 9
    SREM nope a
    SINTER a b
    SINTER a nope
    SUNION a b c
    SDIFF a b
    SDIFF nope a
    SINTERSTORE d a b
    SMEMBERS d
    SUNIONSTORE d a c
    SCARD d
    SDIFFSTORE d a a
    EXISTS d
    SINTERCARD 2 a b
    SINTERCARD 2 a b LIMIT 1
    SINTERCARD 0 a
    SINTERCARD x a
    SINTERCARD 3 a b
    SINTERCARD 1 a LIMIT -1
    SINTERCARD 1 a FOO
    SSCAN a 0
    SSCAN b 0 MATCH [xy]
    SSCAN nope 0
    SMOVE a b 1
    SMOVE a b 1
    SMOVE nope b 1
    SMOVE a a 2
    SMOVE c new z
    EXISTS c
    SMEMBERS new
    SPOP new
    SPOP new
    SADD one m
    SRANDMEMBER one
    SRANDMEMBER one 3
    SRANDMEMBER one -2
    SRANDMEMBER one 0
    SRANDMEMBER nope
    SRANDMEMBER nope 2
    SRANDMEMBER one 1 2
    SPOP one 0
    SPOP one -1
    SPOP one 5
    SPOP nope 2
    SPOP nope
    SPOP a 1 2
    SPOP b 10
    SET s v
    SADD s m
    SMEMBERS s
    SINTER a s
    SUNIONSTORE s2 s
    SMOVE a s 2
",
};

pub const ZSETS: Script = Script {
    name: "sorted sets",
    needs: &[],
    text: "
    ZADD z 1 a 2 b 3 c
    ZADD z 1.5 d 1e2 e -inf f +inf g
    ZADD z NX 9 a 9 h
    ZADD z XX 8 a 8 i
    ZADD z GT CH 0 a 10 b
    ZADD z LT CH 100 c 0.5 d
    ZADD z NX XX 1 a
    ZADD z GT LT 1 a
    ZADD z NX GT 1 a
    ZADD z INCR 1 a 2 b
    ZADD z INCR 0.1 a
    ZADD z INCR GT -5 a
    ZADD z XX INCR 1 missing
    ZADD z 1 a 2
    ZADD z x a
    ZADD z nan a
    ZADD z
    ZADD nope XX 1 a
    ZADD nope XX INCR 1 a
    EXISTS nope
    ZINCRBY z 2.5 c
    ZINCRBY z x c
    ZINCRBY z 1 new
    ZINCRBY z -inf g
    ZSCORE z a
    ZSCORE z nope
    ZSCORE nope a
    ZMSCORE z a nope b
    ZMSCORE nope a
    ZCARD z
    ZCARD nope
    ZRANGE z 0 -1
    ZRANGE z 0 -1 WITHSCORES
    ZRANGE z 2 4 WITHSCORES
    ZRANGE z -3 -1
    ZRANGE z 5 1
    ZRANGE z 0 -1 REV WITHSCORES
    ZRANGE z -inf +inf BYSCORE WITHSCORES
    ZRANGE z (1 3 BYSCORE
    ZRANGE z 3 (1 BYSCORE REV
    ZRANGE z -inf +inf BYSCORE LIMIT 1 2
    ZRANGE z -inf +inf BYSCORE LIMIT 1 -1
    ZRANGE z -inf +inf BYSCORE LIMIT -1 2
    ZRANGE z +inf -inf BYSCORE REV LIMIT 0 3 WITHSCORES
    ZRANGE z 0 -1 LIMIT 0 1
    ZRANGE z - + BYLEX WITHSCORES => -ERR sealcache: ZRANGE … BYLEX is not available on encrypted data: lexicographic ranges would compare encrypted members, not yours; use scores or ranks
    ZRANGE z x y BYSCORE
    ZRANGE z a b BYLEX => -ERR sealcache: ZRANGE … BYLEX is not available on encrypted data: lexicographic ranges would compare encrypted members, not yours; use scores or ranks
    ZRANGE z 0 1 FOO
    ZRANGE z a 1
    ZRANGE nope 0 -1
    ZRANGEBYSCORE z 1 3
    ZRANGEBYSCORE z -inf +inf WITHSCORES LIMIT 0 2
    ZRANGEBYSCORE z 1 3 BYSCORE
    ZREVRANGEBYSCORE z 3 1 WITHSCORES
    ZREVRANGE z 0 2 WITHSCORES
    ZREVRANGE z 0 1 REV
    ZRANK z c
    ZRANK z nope
    ZRANK nope a
    ZREVRANK z c
    ZCOUNT z 1 3
    ZCOUNT z (1 (3
    ZCOUNT z -inf +inf
    ZCOUNT z x 1
    ZCOUNT nope 0 1
    ZRANGESTORE dst z 0 2
    ZRANGE dst 0 -1 WITHSCORES
    ZRANGESTORE dst z 1 3 BYSCORE LIMIT 0 1
    ZRANGE dst 0 -1 WITHSCORES
    ZRANGESTORE dst nope 0 -1
    EXISTS dst
    ZRANGESTORE dst z 0 -1 WITHSCORES
    ZREM z a nope
    ZREM nope a
    ZREMRANGEBYRANK z 0 0
    ZREMRANGEBYSCORE z 100 +inf
    ZREMRANGEBYSCORE z x 1
    ZREMRANGEBYRANK z x 1
    ZRANGE z 0 -1 WITHSCORES
    ZPOPMIN z
    ZPOPMAX z
    ZPOPMIN z 2
    ZPOPMAX z 0
    ZPOPMIN z -1
    ZPOPMIN z 1 2
    ZPOPMIN nope
    ZPOPMIN nope 2
    ZADD lex 0 a 0 b 0 c 0 d 0 e
    ZRANGEBYLEX lex [b (d
    ZRANGEBYLEX lex - +
    ZRANGEBYLEX lex - + LIMIT 1 2
    ZREVRANGEBYLEX lex + [c
    ZRANGEBYLEX lex b d
    ZLEXCOUNT lex [b +
    ZLEXCOUNT lex x y
    ZRANGE lex [b [d BYLEX => -ERR sealcache: ZRANGE … BYLEX is not available on encrypted data: lexicographic ranges would compare encrypted members, not yours; use scores or ranks
    ZRANGE lex [d [b BYLEX REV LIMIT 0 1 => -ERR sealcache: ZRANGE … BYLEX is not available on encrypted data: lexicographic ranges would compare encrypted members, not yours; use scores or ranks
    ZREMRANGEBYLEX lex - (b
    ZRANGE lex 0 -1
    ZADD u1 1 a 2 b 3 c
    ZADD u2 10 b 20 c 30 d
    SADD plain b x
    ZUNION 2 u1 u2
    ZUNION 2 u1 u2 WITHSCORES
    ZUNION 2 u1 u2 WEIGHTS 2 0.5 WITHSCORES
    ZUNION 2 u1 u2 AGGREGATE MAX WITHSCORES
    ZUNION 2 u1 u2 AGGREGATE MIN WITHSCORES
    ZUNION 3 u1 u2 plain WITHSCORES
    ZUNION 2 u1 nope WITHSCORES
    ZUNION 0 u1
    ZUNION 3 u1 u2
    ZUNION 2 u1 u2 WEIGHTS 1
    ZUNION 2 u1 u2 WEIGHTS 1 x
    ZUNION 2 u1 u2 AGGREGATE AVG
    ZINTER 2 u1 u2 WITHSCORES
    ZINTER 2 u1 plain WITHSCORES
    ZINTER 2 u1 nope
    ZDIFF 2 u1 u2 WITHSCORES
    ZDIFF 2 u1 u2 WEIGHTS 1 1
    ZUNIONSTORE out 2 u1 u2
    ZRANGE out 0 -1 WITHSCORES
    ZUNIONSTORE out 2 u1 u2 WITHSCORES
    ZINTERSTORE out 2 u1 u2 AGGREGATE MAX
    ZRANGE out 0 -1 WITHSCORES
    ZDIFFSTORE out 2 u1 u1
    EXISTS out
    ZINTERCARD 2 u1 u2
    ZINTERCARD 2 u1 u2 LIMIT 1
    ZINTERCARD 0 u1
    ZINTERCARD 3 u1
    ZINTERCARD 1 u1 LIMIT -1
    ZINTERCARD 1 u1 WITHSCORES
    ZMPOP 2 nope u1 MIN
    ZMPOP 1 u1 MAX COUNT 5
    ZMPOP 1 u1 MIN
    ZMPOP 0 u1 MIN
    ZMPOP 1 u2 FOO
    ZMPOP 1 u2 MIN COUNT 0
    ZMPOP 1 u2 MIN COUNT 1 COUNT 1
    ZMPOP 3 u2 MIN
    ZSCAN u2 0
    ZSCAN u2 0 MATCH [bc]
    ZSCAN nope 0
    ZADD one 1.1 m
    ZRANDMEMBER one
    ZRANDMEMBER one 3
    ZRANDMEMBER one 3 WITHSCORES
    ZRANDMEMBER one -2 WITHSCORES
    ZRANDMEMBER one 0
    ZRANDMEMBER one 1 FOO
    ZRANDMEMBER nope
    ZRANDMEMBER nope 1
    ZADD zz -0 m 1e17 n 0.1 o 123456789.123 p
    ZRANGE zz 0 -1 WITHSCORES
    ZSCAN zz 0
    SET s v
    ZADD s 1 a
    ZRANGE s 0 -1
    ZUNION 1 s
    ZSCORE s a
",
};

pub const LISTS: Script = Script {
    name: "lists",
    needs: &[],
    text: "
    RPUSH l a b c d e
    LPUSH l z
    LRANGE l 0 -1
    LRANGE l -100 100
    LRANGE l 3 1
    LRANGE l x 1
    LRANGE nope 0 -1
    LLEN l
    LLEN nope
    LINDEX l 0
    LINDEX l -1
    LINDEX l 100
    LINDEX l x
    LINDEX nope 0
    LSET l 1 A
    LSET l 100 A
    LSET l x A
    LSET nope 0 A
    LPOP l
    RPOP l
    LPOP l 2
    RPOP l 0
    LPOP l -1
    LPOP l x
    LPOP l 1 2
    LPOP nope
    LPOP nope 3
    RPOP nope 3
    LPUSHX nope a
    RPUSHX l y
    LRANGE l 0 -1
    LTRIM l 1 -1
    LRANGE l 0 -1
    LTRIM l 5 1
    EXISTS l
    LTRIM nope 0 1
    RPUSH src 1 2 3
    LMOVE src dst LEFT RIGHT
    LMOVE src dst RIGHT LEFT
    LMOVE src src LEFT RIGHT
    LRANGE src 0 -1
    LMOVE src dst UP DOWN
    LMOVE nope dst LEFT LEFT
    RPOPLPUSH src dst
    EXISTS src
    LRANGE dst 0 -1
    RPOPLPUSH nope dst
    LMPOP 2 nope dst LEFT
    LMPOP 1 dst RIGHT COUNT 10
    LMPOP 1 dst RIGHT
    LMPOP 0 dst LEFT
    LMPOP 2 dst LEFT
    LMPOP 1 dst MIDDLE
    LMPOP 1 dst LEFT COUNT 0
    RPUSH b1 x
    BLPOP nope b1 0
    BLPOP nope 0.01
    BRPOP b1 x
    BRPOP b1 -1
    RPUSH b1 y z
    BRPOPLPUSH b1 b2 0
    BLMOVE b1 b2 LEFT LEFT 0
    BLMOVE b1 b2 LEFT LEFT 0.01
    BLMPOP 0.01 1 b2 LEFT COUNT 5
    BLMPOP 0.01 1 b2 LEFT
    SET s v
    LPUSH s a
    LRANGE s 0 -1
    LPOP s
    LMOVE s dst LEFT LEFT
    RPUSH l2 a
    LMOVE l2 s LEFT LEFT
    BLPOP s 0
",
};

pub const STREAMS: Script = Script {
    name: "streams",
    needs: &[],
    text: "
    XADD s 1-1 a 1
    XADD s 1-1 a 1
    XADD s 1-* b 2
    XADD s 2 c 3
    XADD s 0-0 a 1
    XADD s 0 a 1
    XADD s 3-0 a
    XADD s x a 1
    XADD s 3-x a 1
    XADD s MAXLEN x 4-0 a 1
    XADD s MAXLEN -1 4-0 a 1
    XADD s MAXLEN 1 MINID 0 4-0 a 1
    XADD s LIMIT 1 4-0 a 1
    XADD s MAXLEN 5 LIMIT 1 4-0 a 1
    XADD nope NOMKSTREAM * a 1
    EXISTS nope
    XLEN s
    XLEN nope
    XRANGE s - +
    XRANGE s 1 1
    XRANGE s (1-1 +
    XRANGE s - (2-0
    XRANGE s - + COUNT 1
    XRANGE s - + COUNT 0
    XRANGE s - + COUNT -1
    XRANGE s - + COUNT x
    XRANGE s - + FOO
    XRANGE s x +
    XRANGE s 3 1
    XRANGE nope - +
    XRANGE s (18446744073709551615-18446744073709551615 +
    XREVRANGE s + -
    XREVRANGE s + - COUNT 2
    XREVRANGE s (2-0 -
    XADD s MAXLEN = 2 5-0 d 4
    XRANGE s - +
    XADD s MINID 3 6-0 e 5
    XRANGE s - +
    XADD s MAXLEN ~ 1 7-0 f 6
    XLEN s
    XTRIM s MAXLEN 1
    XTRIM s MINID 100
    XTRIM nope MAXLEN 0
    XTRIM s
    XTRIM s FOO 1
    XTRIM s MAXLEN ~ 0 LIMIT 10
    XADD s 8-0 g 7
    XADD s 9-0 h 8
    XDEL s 8-0 100-0
    XDEL s x
    XDEL nope 1-0
    XRANGE s - +
    XADD s 8-5 late 1
    XREAD STREAMS s 0
    XREAD COUNT 1 STREAMS s nope 0 0
    XREAD STREAMS s $
    XREAD STREAMS s
    XREAD STREAMS s nope 0
    XREAD FOO STREAMS s 0
    XREAD GROUP g c STREAMS s 0
    XREAD NOACK STREAMS s 0
    XREAD STREAMS s >
    XREAD COUNT x STREAMS s 0
    XREAD BLOCK 10 STREAMS s 9-0
    XREAD BLOCK -1 STREAMS s 0
    XREAD BLOCK x STREAMS s 0
    SET str v
    XADD str * a 1
    XRANGE str - +
    XREAD STREAMS str 0
    XLEN str
",
};

pub const PUBSUB_AND_TIME: Script = Script {
    name: "pubsub and time",
    needs: &[],
    text: "
    PUBLISH ch hello
    PUBSUB CHANNELS
    PUBSUB NUMSUB a b
    PUBSUB NUMPAT
    PUBSUB NUMPAT x
    PUBSUB SHARDCHANNELS
    PUBSUB SHARDCHANNELS a*
    PUBSUB CHANNELS a b
    PUBSUB shardchannels a b
    PUBSUB SHARDNUMSUB a b
    PUBSUB SHARDNUMSUB
    PUBSUB HELP
    PUBSUB HELP x
    PUBSUB NOSUCH
    PUBSUB
    TIME
    TIME x
",
};

/// Whole iterations of the SCAN family, over more elements than a page.
pub const SCANS: Script = Script {
    name: "scans",
    needs: &[],
    text: "
    MSET k0 v k1 v k2 v k3 v k4 v k5 v k6 v k7 v k8 v k9 v k10 v k11 v k12 v k13 v k14 v k15 v k16 v k17 v k18 v k19 v k20 v k21 v k22 v k23 v k24 v k25 v k26 v k27 v k28 v k29 v k30 v k31 v k32 v k33 v k34 v k35 v k36 v k37 v k38 v k39 v
    SADD set m0 m1 m2 m3 m4 m5 m6 m7 m8 m9 m10 m11 m12 m13 m14 m15 m16 m17 m18 m19 m20 m21 m22 m23 m24 m25 m26 m27 m28 m29 m30 m31 m32 m33 m34 m35 m36 m37 m38 m39
    HSET hash f0 v0 f1 v1 f2 v2 f3 v3 f4 v4 f5 v5 f6 v6 f7 v7 f8 v8 f9 v9 f10 v10 f11 v11 f12 v12 f13 v13 f14 v14 f15 v15 f16 v16 f17 v17 f18 v18 f19 v19 f20 v20 f21 v21 f22 v22 f23 v23 f24 v24 f25 v25 f26 v26 f27 v27 f28 v28 f29 v29 f30 v30 f31 v31 f32 v32 f33 v33 f34 v34 f35 v35 f36 v36 f37 v37 f38 v38 f39 v39
    ZADD zset 0 m0 1 m1 2 m2 3 m3 4 m4 5 m5 6 m6 7 m7 8 m8 9 m9 10 m10 11 m11 12 m12 13 m13 14 m14 15 m15 16 m16 17 m17 18 m18 19 m19 20 m20 21 m21 22 m22 23 m23 24 m24 25 m25 26 m26 27 m27 28 m28 29 m29 30 m30 31 m31 32 m32 33 m33 34 m34 35 m35 36 m36 37 m37 38 m38 39 m39
    RPUSH list a
    [iterates] SCAN 0 COUNT 5
    [iterates] SCAN 0 COUNT 3 MATCH k1*
    [iterates] SCAN 0 COUNT 7 TYPE string
    [iterates] SCAN 0 TYPE list
    [iterates] SCAN 0 TYPE hash MATCH h*
    [iterates] SCAN 0 MATCH nothing*
    [iterates] SSCAN set 0 COUNT 4
    [iterates] SSCAN set 0 COUNT 4 MATCH m1*
    [iterates] HSCAN hash 0 COUNT 4
    [iterates] HSCAN hash 0 MATCH f2*
    [iterates] ZSCAN zset 0 COUNT 4
    [iterates] ZSCAN zset 0 MATCH m3*
    [iterates] SSCAN nope 0
    [iterates] SSCAN hash 0
    DBSIZE
    KEYS k3*
    FLUSHDB
    DBSIZE
    [iterates] SCAN 0
",
};

/// The floating-point increments (emulated: read, add, write back).
pub const FLOATS: Script = Script {
    name: "floats",
    needs: &[],
    text: "
    SET f 10.5
    INCRBYFLOAT f 0.1
    INCRBYFLOAT f -5
    INCRBYFLOAT f 5.0e3
    INCRBYFLOAT f 1e-3
    GET f
    INCRBYFLOAT f x
    INCRBYFLOAT f inf
    INCRBYFLOAT f nan
    INCRBYFLOAT new 3
    SET big 1.7976931348623157e308
    INCRBYFLOAT big 1.7976931348623157e308
    SET s abc
    INCRBYFLOAT s 1
    LPUSH l a
    INCRBYFLOAT l 1
    INCRBYFLOAT f
    SET ttl 1.5 EX 100
    INCRBYFLOAT ttl 1
    TTL ttl
    HSET h f 1.5 s abc
    HINCRBYFLOAT h f 0.25
    HINCRBYFLOAT h f -1e2
    HINCRBYFLOAT h new -1
    HINCRBYFLOAT h f x
    HINCRBYFLOAT h f inf
    HINCRBYFLOAT h s 1
    HINCRBYFLOAT l f 1
    HINCRBYFLOAT nope f 2.5
    HGETALL nope
    HINCRBYFLOAT h f
",
};

/// Commands Redis serves only on a real server: OBJECT, WAIT.
pub const SERVER_SIDE: Script = Script {
    name: "object and wait",
    needs: &[],
    text: "
    RPUSH l a b
    XADD st 1-1 f v
    SET long 0123456789012345678901234567890123456789012345678901234567890123456789
    # Encodings that do not change with encryption (a plaintext short
    # string is embstr or int, its envelope raw).
    OBJECT ENCODING l
    OBJECT ENCODING st
    OBJECT ENCODING long
    OBJECT ENCODING nope
    OBJECT REFCOUNT l
    OBJECT REFCOUNT nope
    OBJECT IDLETIME l
    OBJECT FREQ l
    OBJECT HELP
    OBJECT NOSUCH l
    OBJECT
    WAIT 0 0
    WAIT x 0
    WAIT 0 -1
",
};

/// Consumer groups.
pub const STREAM_GROUPS: Script = Script {
    name: "stream groups",
    needs: &[],
    text: "
    XADD s 1-1 a 1
    XADD s 2-1 b 2
    XADD s 3-1 c 3
    XGROUP CREATE s g 0
    XGROUP CREATE s g 0
    XGROUP CREATE nope g 0
    XGROUP CREATE nope g $ MKSTREAM
    XGROUP CREATE s late $ ENTRIESREAD 3
    XGROUP CREATECONSUMER s g alice
    XGROUP CREATECONSUMER s g alice
    XGROUP CREATECONSUMER s nogroup bob
    XREADGROUP GROUP g alice COUNT 1 STREAMS s >
    XREADGROUP GROUP g bob STREAMS s >
    XREADGROUP GROUP g alice STREAMS s 0
    XREADGROUP GROUP g alice STREAMS s >
    XREADGROUP GROUP nogroup alice STREAMS s >
    XREADGROUP GROUP g alice NOACK STREAMS s 0
    XREADGROUP GROUP g alice STREAMS s
    XPENDING s g
    # The extended form shows idle milliseconds: only a filter that leaves
    # nothing is deterministic.
    XPENDING s g IDLE 3600000 - + 10
    XPENDING s g IDLE 3600000 - + 10 alice
    XPENDING s g - + x
    XPENDING s nogroup
    XACK s g 1-1 9-9
    XACK s g x
    XPENDING s g
    XCLAIM s g carol 0 2-1
    XCLAIM s g carol 0 3-1 JUSTID
    XCLAIM s g carol 0 9-9
    XCLAIM s g carol x 2-1
    XAUTOCLAIM s g dave 0 0 COUNT 10
    XAUTOCLAIM s g dave 0 0 COUNT 10 JUSTID
    XAUTOCLAIM s g dave 0 x
    XINFO GROUPS s
    XINFO CONSUMERS s nogroup
    XINFO GROUPS nope
    XINFO HELP
    XINFO STREAM nope
    XGROUP SETID s g 0
    XGROUP SETID s g $ ENTRIESREAD 3
    XGROUP SETID s nogroup 0
    XGROUP DELCONSUMER s g dave
    XGROUP DELCONSUMER s g nobody
    XGROUP DESTROY s late
    XGROUP DESTROY s late
    XGROUP HELP
    XSETID s 9-9
    XSETID s 1-1
    XSETID s 10-0 ENTRIESADDED 5 MAXDELETEDID 2-0
    XLEN s
    SET str v
    XGROUP CREATE str g 0
    XREADGROUP GROUP g a STREAMS str >
",
};

/// MULTI/EXEC/DISCARD/WATCH/UNWATCH.
pub const TRANSACTIONS: Script = Script {
    name: "transactions",
    needs: &[Capability::Transactions],
    text: "
    # Each queued command's reply as its own command renders it, errors
    # inside EXEC included (WRONGTYPE, not an integer).
    MULTI
    SET k 1
    LPUSH k x
    GET k
    GET missing
    LPOP missing 2
    SET n abc
    EXPIRE n x
    LRANGE missing 0 -1
    ZADD z 1 a 2 b
    ZRANGE z 0 -1 WITHSCORES
    HSET h f v
    HGETALL h
    PING
    ECHO hi
    EXEC
    # A queue-time error (wrong arity, unknown command) aborts EXEC.
    MULTI
    SET a 1
    GET
    EXEC
    EXISTS a
    MULTI
    SET a 1
    NOSUCHCOMMAND x
    EXEC
    EXISTS a
    # DISCARD, and the errors around it.
    MULTI
    SET d 1
    DISCARD
    EXISTS d
    DISCARD
    EXEC
    MULTI
    MULTI
    EXEC
    # Blocking commands inside MULTI answer at once.
    MULTI
    BLPOP nope 0
    RPUSH q a
    BRPOP q 0
    BZPOPMIN nope 0
    EXEC
    # Emulated commands inside MULTI are computed at EXEC, on what the
    # transaction set before them.
    SET c 5
    MULTI
    SET c 6
    INCR c
    APPEND c x
    GET c
    EXEC
    # A refusal aborts the transaction, as a queue-time error in Redis does.
    MULTI
    SET c 6
    INCR c
    SELECT 0 => -ERR sealcache: SELECT inside MULTI is not supported by sealcache
    GET c
    EXEC => -EXECABORT Transaction discarded because of previous errors.
    [redis] DISCARD
    GET c
    # WATCH: a change by another client aborts EXEC with Redis's null.
    SET w 1
    WATCH w
    [2] SET w changed
    MULTI
    SET w mine
    EXEC
    GET w
    # WATCH without a change: EXEC runs.
    WATCH w
    MULTI
    GET w
    EXEC
    # UNWATCH forgets the watch.
    WATCH w
    [2] SET w again
    UNWATCH
    MULTI
    SET w mine
    EXEC
    GET w
    # WATCH of a missing key that another client creates, and of several keys.
    WATCH w x y
    [2] SET y 1
    MULTI
    GET y
    EXEC
    # EXEC ends the watch.
    WATCH w
    MULTI
    EXEC
    [2] SET w later
    MULTI
    GET w
    EXEC
    # WATCH inside MULTI, and arity errors.
    MULTI
    WATCH w
    EXEC
    WATCH
    MULTI x
    EXEC x
",
};

/// Blocking commands woken by another client, served in the order they
/// blocked, and timing out with Redis's null.
pub const BLOCKING: Script = Script {
    name: "blocking",
    needs: &[Capability::Blocking],
    text: "
    [1 blocks] BLPOP q1 q2 0
    [2] RPUSH q2 a b
    [1 reads]
    [2] LRANGE q2 0 -1
    [1 blocks] BRPOP q7 q8 0
    [2] LPUSH q8 x y
    [1 reads]
    [1 blocks] BRPOPLPUSH q3 d 0
    [2] RPUSH q3 c
    [1 reads]
    [1 blocks] BLMOVE q4 d RIGHT LEFT 0
    [2] LPUSH q4 x
    [1 reads]
    [2] LRANGE d 0 -1
    [1 blocks] BLMPOP 0 2 q5 q6 RIGHT COUNT 2
    [2] RPUSH q6 1 2 3
    [1 reads]
    [1 blocks] BZPOPMIN z1 0
    [2] ZADD z1 2 b 1 a
    [1 reads]
    [1 blocks] BZPOPMAX z3 0
    [2] ZADD z3 3 c
    [1 reads]
    [1 blocks] BZMPOP 0 1 z2 MAX COUNT 2
    [2] ZADD z2 1 a 2 b 3 c
    [1 reads]
    [1 blocks] XREAD BLOCK 0 STREAMS st $
    [2] XADD st 5-0 f v
    [1 reads]
    [1 blocks] XREAD COUNT 1 BLOCK 0 STREAMS st 5-0
    [2] XADD st 6-0 g w
    [1 reads]
    # Two clients on one key: served in the order they blocked.
    [1 blocks] BLPOP fifo 0
    [3 blocks] BLPOP fifo 0
    [2] RPUSH fifo first second third
    [1 reads]
    [3 reads]
    [2] LRANGE fifo 0 -1
    # A push inside MULTI wakes the waiter when EXEC runs.
    [1 blocks] BLPOP tx 0
    [2] MULTI
    [2] RPUSH tx a
    [2] RPUSH tx b
    [2] EXEC
    [1 reads]
    [2] LRANGE tx 0 -1
    # Immediate answers, timeouts and errors.
    RPUSH ready x
    BLPOP ready 0
    BLPOP nope 0.05
    BRPOP nope 0.05
    BZPOPMIN nope 0.05
    BZPOPMAX nope 0.05
    BLMOVE nope d LEFT LEFT 0.05
    BRPOPLPUSH nope d 0.05
    BLMPOP 0.05 1 nope LEFT
    BZMPOP 0.05 1 nope MIN
    XREAD BLOCK 50 STREAMS nope 0
    XREAD BLOCK 50 STREAMS nope $
    BLPOP q -1
    BLPOP q x
    BLPOP q 1e99
    BLPOP q inf
    BLPOP q -inf
    BLPOP q nan
    BLMPOP 0 0 q LEFT
    BZMPOP 0 1 q SIDEWAYS
    SET str v
    BLPOP str 0
    BZPOPMIN str 0
    XREAD BLOCK 0 STREAMS str 0
",
};

/// Pub/Sub between clients: confirmations and messages byte for byte.
pub const PUBSUB: Script = Script {
    name: "pubsub",
    needs: &[Capability::PubSub],
    text: "
    [2 sends] SUBSCRIBE news sport
    [2 reads]
    [2 reads]
    [2 sends] PSUBSCRIBE n*
    [2 reads]
    PUBLISH news hello
    [2 reads]
    [2 reads]
    PUBLISH sport goal
    [2 reads]
    PUBLISH other x
    PUBSUB NUMSUB news sport none
    PUBSUB NUMPAT
    PUBSUB CHANNELS
    PUBSUB CHANNELS n*
    PUBSUB CHANNELS none*
    # RESP2 subscribers may only (un)subscribe, PING and RESET; RESP3 may run anything.
    [2] PING
    [2] PING hi
    [2] GET k
    [2 sends] UNSUBSCRIBE news
    [2 reads]
    PUBLISH news again
    [2 reads]
    [2 sends] PUNSUBSCRIBE
    [2 reads]
    PUBLISH news quiet
    [2 sends] UNSUBSCRIBE
    [2 reads]
    [2 sends] UNSUBSCRIBE
    [2 reads]
    [2 sends] PUNSUBSCRIBE
    [2 reads]
    [2] PING
    # Shard channels.
    [2 sends] SSUBSCRIBE s1 s2
    [2 reads 2]
    SPUBLISH s1 hi
    [2 reads]
    SPUBLISH s3 nobody
    PUBSUB SHARDCHANNELS
    PUBSUB SHARDNUMSUB s1 s2 none
    [2 sends] SUNSUBSCRIBE s1
    [2 reads]
    [2 sends] SUNSUBSCRIBE
    [2 reads]
    [2 sends] SUNSUBSCRIBE
    [2 reads]
    # A second subscriber, a pattern that matches twice.
    [3 sends] PSUBSCRIBE a* *b
    [3 reads]
    [3 reads]
    # One message per matching pattern, in the order of Redis's hash table.
    PUBLISH ab both
    [3 reads 2 unordered]
    PUBSUB NUMPAT
    SUBSCRIBE
    PSUBSCRIBE
",
};

/// Keys with a short time to live: gone from every read once expired.
pub const EXPIRY: Script = Script {
    name: "expiry",
    needs: &[],
    text: "
    SET k v PX 100
    HSET h f v
    PEXPIRE h 100
    RPUSH l a
    PEXPIRE l 100
    ZADD z 1 m
    PEXPIRE z 100
    SADD s m
    PEXPIRE s 100
    XADD x 1-1 f v
    PEXPIRE x 100
    SET untouched v PX 100
    SET p v PX 100
    PERSIST p
    SET kept v EX 100
    SET t v PX 100
    SET t w KEEPTTL
    SET reset v PX 100
    SET reset w
    GETEX g
    SET g v
    GETEX g PX 100
    [awaits :0] EXISTS k h l z t g s x
    GET k
    TTL k
    PTTL k
    HLEN h
    HGET h f
    LLEN l
    LRANGE l 0 -1
    ZCARD z
    ZRANGE z 0 -1
    SMEMBERS s
    SISMEMBER s m
    XRANGE x - +
    XLEN x
    HGETALL h
    TYPE h
    GET t
    GET reset
    TTL reset
    GET p
    TTL p
    # The untouched key expired too: no read returns it.
    DEL p t reset
    RANDOMKEY
    KEYS *
    SCAN 0 COUNT 100
    SCAN 0 COUNT 100 TYPE string
    EXISTS untouched
    DBSIZE
    # EXPIRE with a time in the past deletes at once.
    SET now v
    PEXPIREAT now 1
    EXISTS now
    EXPIRE kept -1
    EXISTS kept
",
};

/// The scripts of one client's data commands.
pub const DATA: &[Script] = &[
    STRINGS,
    FLOATS,
    KEYS,
    DATABASES,
    HASHES,
    SETS,
    ZSETS,
    LISTS,
    STREAMS,
    STREAM_GROUPS,
    SCANS,
    SERVER_SIDE,
    PUBSUB_AND_TIME,
];

/// The scripts between clients, and over time.
pub const BETWEEN_CLIENTS: &[Script] = &[TRANSACTIONS, BLOCKING, PUBSUB, EXPIRY];

/// Every script.
pub const ALL: &[&[Script]] = &[DATA, BETWEEN_CLIENTS];
