//! Numbers as redis-server reads them from arguments.

/// A decimal integer as Redis's `string2ll` reads it: optional `-`, digits,
/// no leading zeros (so "0" but not "-0" or "007"), no `+`, no spaces, within
/// `i64`.
pub fn parse_long(bytes: &[u8]) -> Option<i64> {
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    if bytes.len() > 20
        || digits.is_empty()
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits[0] == b'0' && bytes != b"0")
    {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse_long;

    #[test]
    fn longs_are_read_as_string2ll_reads_them() {
        for (text, value) in [
            ("0", Some(0)),
            ("-12", Some(-12)),
            ("007", None),
            ("-0", None),
        ] {
            assert_eq!(parse_long(text.as_bytes()), value, "{text}");
        }
        assert_eq!(parse_long(b"+1"), None);
        assert_eq!(parse_long(b" 1"), None);
        assert_eq!(parse_long(b"9223372036854775808"), None);
        assert_eq!(parse_long(b"-9223372036854775808"), Some(i64::MIN));
    }
}
