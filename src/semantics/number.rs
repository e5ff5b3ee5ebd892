//! Numbers as redis-server reads and prints them: `string2ll` for integers,
//! `strtoul` for SCAN cursors, `strtod` (and Redis's stricter
//! `getDoubleFromObject`) for scores, and `%.17g` for the doubles it replies.

/// Redis's `LONG_STR_SIZE`: `string2ll` refuses strings this long or longer.
const LONG_STR_SIZE: usize = 21;
/// Redis's `MAX_LONG_DOUBLE_CHARS`: longer float arguments are refused.
const MAX_LONG_DOUBLE_CHARS: usize = 5 * 1024;

/// Redis's `string2ll`: optional `-`, digits without leading zeros (so `0`
/// but not `-0`, `007` or `+1`), no spaces, fits in an i64.
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() >= LONG_STR_SIZE {
        return None;
    }
    if bytes == b"0" {
        return Some(0);
    }
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut magnitude: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude
            .checked_mul(10)?
            .checked_add(u64::from(b - b'0'))?;
    }
    if negative {
        if magnitude > i64::MAX as u64 + 1 {
            None
        } else {
            Some((magnitude as i64).wrapping_neg())
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// The count of SRANDMEMBER, HRANDFIELD and ZRANDMEMBER: any integer but
/// `i64::MIN` (Redis negates it), with Redis's messages.
pub fn random_count(arg: &[u8]) -> Result<i64, String> {
    match parse_i64(arg) {
        None => Err(super::errors::NOT_INTEGER.into()),
        Some(i64::MIN) => Err(format!(
            "ERR value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        )),
        Some(n) => Ok(n),
    }
}

/// The count and `flag` (WITHVALUES, WITHSCORES) of HRANDFIELD and
/// ZRANDMEMBER (`args[2..]`), checked in Redis's order: the count, the flag,
/// then the count's tighter bound with the flag (`LONG_MAX / 2`).
pub fn random_count_and_flag(args: &[bytes::Bytes], flag: &[u8]) -> Result<(i64, bool), String> {
    let count = random_count(&args[2])?;
    let with_flag = match args.get(3) {
        None => false,
        Some(w) if args.len() == 4 && w.eq_ignore_ascii_case(flag) => true,
        Some(_) => return Err(super::errors::SYNTAX.into()),
    };
    if with_flag && !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
        return Err("ERR value is out of range".into());
    }
    Ok((count, with_flag))
}

/// A SCAN cursor as Redis reads it (`strtoul`, base 10, the whole argument):
/// an empty string is 0, a leading `+` or `-` is accepted (`-1` wraps to
/// 2^64 - 1), leading spaces and overflow are refused.
pub fn parse_cursor(bytes: &[u8]) -> Option<u64> {
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, bytes),
    };
    if digits.is_empty() {
        // strtoul consumed nothing: the end pointer is the start, which is only
        // "the whole string" when the string is empty.
        return bytes.is_empty().then_some(0);
    }
    let mut value: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

/// What C's `strtod` makes of a whole argument.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Strtod {
    pub value: f64,
    /// `errno == ERANGE`: the text overflowed to ±inf or underflowed to zero.
    pub out_of_range: bool,
}

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `strtod` over the whole of `text` (leading C whitespace allowed, as strtod
/// skips it); `None` when strtod would stop before the end.
pub fn strtod(text: &[u8]) -> Option<Strtod> {
    let start = text.iter().position(|&b| !is_c_space(b))?;
    let text = &text[start..];
    let (negative, body) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    let hex = body.len() > 2 && (body.starts_with(b"0x") || body.starts_with(b"0X"));
    let value = if hex {
        parse_hex_float(&body[2..])?
    } else {
        // Rust's grammar is strtod's decimal/inf/nan grammar, except that it
        // refuses `nan(...)`, which every caller refuses anyway.
        let s = std::str::from_utf8(body).ok()?;
        if s.starts_with(['+', '-']) {
            return None;
        }
        s.parse::<f64>().ok()?
    };
    let literal_inf = body.first().is_some_and(|b| b.eq_ignore_ascii_case(&b'i'));
    let nonzero_digits = if hex {
        body[2..]
            .iter()
            .take_while(|b| !matches!(b, b'p' | b'P'))
            .any(|b| b.is_ascii_hexdigit() && *b != b'0')
    } else {
        body.iter()
            .take_while(|b| !matches!(b, b'e' | b'E'))
            .any(|b| matches!(b, b'1'..=b'9'))
    };
    let out_of_range = (value.is_infinite() && !literal_inf) || (value == 0.0 && nonzero_digits);
    let value = if negative { -value } else { value };
    Some(Strtod {
        value,
        out_of_range,
    })
}

/// The digits after `0x` of a C hexadecimal float: `h[.h][p[±]d]`.
fn parse_hex_float(text: &[u8]) -> Option<f64> {
    let mut mantissa: u64 = 0;
    let mut exponent: i64 = 0;
    let mut digits = 0usize;
    let mut sticky = false;
    let mut seen_point = false;
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        if b == b'.' && !seen_point {
            seen_point = true;
        } else if let Some(d) = (b as char).to_digit(16) {
            digits += 1;
            if mantissa >> 60 == 0 {
                mantissa = mantissa << 4 | u64::from(d);
                if seen_point {
                    exponent -= 4;
                }
            } else {
                sticky |= d != 0;
                if !seen_point {
                    exponent += 4;
                }
            }
        } else {
            break;
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    if i < text.len() {
        if !matches!(text[i], b'p' | b'P') {
            return None;
        }
        let rest = &text[i + 1..];
        let (sign, digits) = match rest.split_first() {
            Some((b'-', r)) => (-1i64, r),
            Some((b'+', r)) => (1, r),
            _ => (1, rest),
        };
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let e = digits.iter().fold(0i64, |acc, &b| {
            (acc * 10 + i64::from(b - b'0')).min(1 << 20)
        });
        exponent += sign * e;
    }
    // Rounding the sticky bit into the lowest place keeps ties honest.
    let mantissa = mantissa | u64::from(sticky);
    let scaled = (mantissa as f64) * 2f64.powi(exponent.clamp(-1100, 1100) as i32);
    Some(scaled)
}

/// Redis's `getDoubleFromObject` (scores, INCRBYFLOAT-like arguments): the
/// whole text, no leading space, no overflow or underflow to zero, not NaN.
pub fn parse_f64(text: &[u8]) -> Option<f64> {
    if text.is_empty() || is_c_space(text[0]) || text.len() > MAX_LONG_DOUBLE_CHARS {
        return None;
    }
    let parsed = strtod(text)?;
    if parsed.out_of_range || parsed.value.is_nan() {
        return None;
    }
    Some(parsed.value)
}

/// A double as C's `printf("%.17g")` prints it (Redis 7.0's doubles in RESP2
/// and RESP3, and its ZSCAN scores): 17 significant digits, trailing zeros
/// removed, exponent form below 1e-4 and from 1e17.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return if d.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.into();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` is exact and rounds half to even, as glibc's printf does.
    let sci = format!("{:.16e}", d.abs());
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::with_capacity(24);
    if d < 0.0 {
        out.push('-');
    }
    if !(-4..17).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        let rest = rest.trim_end_matches('0');
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        out.push_str(&e.to_string());
    } else if exp >= 0 {
        let point = exp as usize + 1;
        let (int, frac) = digits.split_at(point);
        out.push_str(int);
        let frac = frac.trim_end_matches('0');
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
    } else {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(digits.trim_end_matches('0'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string2ll_rules() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-0",
            b"007",
            b"+1",
            b" 1",
            b"1 ",
            b"9223372036854775808",
            b"1.0",
            b"-",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn cursors_follow_strtoul() {
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"17"), Some(17));
        assert_eq!(parse_cursor(b"+3"), Some(3));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
        assert_eq!(parse_cursor(b"x"), None);
        assert_eq!(parse_cursor(b"-"), None);
    }

    #[test]
    fn doubles_parse_like_strtod() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"+Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"0x10"), Some(16.0));
        assert_eq!(parse_f64(b"0x1.8p1"), Some(3.0));
        assert_eq!(parse_f64(b".5"), Some(0.5));
        assert_eq!(parse_f64(b"5."), Some(5.0));
        assert_eq!(parse_f64(b"1e-310"), Some(1e-310));
        for bad in [
            &b""[..],
            b" 1",
            b"1 ",
            b"nan",
            b"1e500",
            b"1e-400",
            b"abc",
            b"1e",
            b"0x",
            b"--1",
        ] {
            assert_eq!(parse_f64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(strtod(b" 5").map(|s| s.value), Some(5.0));
        assert!(strtod(b"1e500").unwrap().out_of_range);
    }

    #[test]
    fn doubles_print_as_percent_17g() {
        let cases: &[(f64, &str)] = &[
            (1.1, "1.1000000000000001"),
            (1.5, "1.5"),
            (3.0, "3"),
            (-0.0, "-0"),
            (0.1, "0.10000000000000001"),
            (1e17, "1e+17"),
            (1e16, "10000000000000000"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1.0000000000000001e-05"),
            (2.5e-300, "2.5e-300"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (-2.0, "-2"),
            (1e300, "1.0000000000000001e+300"),
        ];
        for (d, text) in cases {
            assert_eq!(format_double(*d), *text, "{d:e}");
        }
    }
}
