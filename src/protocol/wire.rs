//! RESP written piece by piece, for the two places a finished-frame encoder
//! cannot serve: a value sealed in place in the upstream output buffer, and a
//! value decrypted in place in the client's. Everything else is encoded by
//! redis-protocol.

use bytes::BytesMut;

/// Appends `prefix` (`*` array, `$` bulk string…), the decimal `n` and CRLF.
pub fn put_length(out: &mut BytesMut, prefix: u8, n: usize) {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n).as_bytes();
    out.reserve(3 + digits.len());
    out.extend_from_slice(&[prefix]);
    out.extend_from_slice(digits);
    out.extend_from_slice(b"\r\n");
}

/// Appends `data` as a bulk string.
pub fn put_bulk(out: &mut BytesMut, data: &[u8]) {
    out.reserve(data.len() + 16);
    put_length(out, b'$', data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_redis_protocol_writes() {
        let mut out = BytesMut::new();
        put_length(&mut out, b'*', 2);
        put_bulk(&mut out, b"GET");
        put_bulk(&mut out, b"");
        let mut expected = BytesMut::new();
        let frame = redis_protocol::resp2::types::BorrowedFrame::Array(&[
            redis_protocol::resp2::types::BorrowedFrame::BulkString(b"GET"),
            redis_protocol::resp2::types::BorrowedFrame::BulkString(b""),
        ]);
        redis_protocol::resp2::encode::extend_encode_borrowed(&mut expected, &frame, false)
            .unwrap();
        assert_eq!(out, expected);
    }
}
