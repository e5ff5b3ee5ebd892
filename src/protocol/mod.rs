//! The wire: decoding client requests (RESP arrays and inline commands, with
//! size caps), finding where upstream replies end (`scan`, with the reply
//! limits), and encoding replies in the client's protocol (RESP2 or RESP3;
//! `transcode` renders raw RESP3 bytes in RESP2).

pub mod reply;
pub mod request;
pub mod scan;
pub mod transcode;
pub mod wire;

pub use redis_protocol::resp3::types::BytesFrame as Frame;

/// The protocol a client speaks: RESP2 by default, RESP3 after `HELLO 3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Resp2,
    Resp3,
}

impl Protocol {
    pub fn version(self) -> i64 {
        match self {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        }
    }
}
