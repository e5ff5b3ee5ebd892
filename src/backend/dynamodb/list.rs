//! Lists (in progress).
use super::tx::{Fail, Tx, reply_err};
use crate::protocol::Frame;
use bytes::Bytes;
macro_rules! todo_cmd { ($($name:ident $(, $p:ident: $t:ty)*;)*) => { $(
    pub async fn $name(_tx: &mut Tx<'_>, _args: &[Bytes] $(, $p: $t)*) -> Result<Frame, Fail> { $(let _ = $p;)* Err(reply_err("ERR not yet")) }
)* } }
todo_cmd! { lindex; llen; lmove; pop, left: bool; push, left: bool, existing: bool; lrange; lset; ltrim; rpoplpush; }
