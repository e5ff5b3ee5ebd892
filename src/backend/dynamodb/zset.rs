//! Sorted sets (in progress).
use super::tx::{Fail, Tx, reply_err};
use crate::protocol::Frame;
use bytes::Bytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeForm {
    Range,
    ByScore,
    RevRange,
    RevByScore,
}

macro_rules! todo_cmd { ($($name:ident $(, $p:ident: $t:ty)*;)*) => { $(
    pub async fn $name(_tx: &mut Tx<'_>, _args: &[Bytes] $(, $p: $t)*) -> Result<Frame, Fail> { $(let _ = $p;)* Err(reply_err("ERR not yet")) }
)* } }
todo_cmd! { zadd, incr: bool; zcard; zcount; zmscore; zpop, max: bool; zrange, form: RangeForm; zrangestore; zrank, rev: bool; zrem; zremrange, by_score: bool; zscore; }
pub(super) fn member_too_long() -> Fail {
    reply_err(
        "ERR sealcache: sorted-set members longer than 1000 bytes are not supported by the dynamodb backend",
    )
}
