//! INCRBYFLOAT and HINCRBYFLOAT arithmetic as redis-server does it: in C
//! `long double` — on x86-64 the x87 format, with a 64-bit significand —
//! parsed as `strtold` parses and printed as `%.17Lf` with trailing zeros
//! removed. An f64 would answer `0.1 + 0.2` with `0.30000000000000004` where
//! Redis answers `0.3`, so the emulation computes exactly what Redis computes,
//! with big integers: every operation is exact, then rounded once, to nearest
//! with ties to even, as the x87 unit and glibc's printf round.
//!
//! Out of scope: subnormal results (below about 3.4e-4932), which are
//! refused like an underflow to zero.

use num_bigint::BigUint;

/// Bits in the x87 extended significand.
const PRECISION: u64 = 64;
/// Exponent of the significand's lowest bit for the largest and the smallest
/// normal values (2^16383 and 2^-16382, with a 64-bit significand).
const MAX_EXPONENT: i64 = 16383 - 63;
const MIN_EXPONENT: i64 = -16382 - 63;
/// Redis refuses longer numbers (`MAX_LONG_DOUBLE_CHARS`).
const MAX_CHARS: usize = 5 * 1024;
/// Fraction digits of `%.17Lf`.
const FRACTION_DIGITS: u32 = 17;

/// A `long double` that is not NaN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LongDouble {
    /// ±`significand` × 2^`exponent`; the significand is 0 or has bit 63 set.
    Finite {
        negative: bool,
        significand: u64,
        exponent: i64,
    },
    Infinite {
        negative: bool,
    },
}

impl LongDouble {
    pub const ZERO: LongDouble = LongDouble::Finite {
        negative: false,
        significand: 0,
        exponent: 0,
    };

    pub fn is_finite(&self) -> bool {
        matches!(self, LongDouble::Finite { .. })
    }

    /// Redis's `string2ld`: the whole input is one `strtold` number (decimal,
    /// hexadecimal, `inf`/`infinity`), no leading space, not NaN, and not out
    /// of range. `None` is Redis's "not a valid float".
    pub fn parse(bytes: &[u8]) -> Option<LongDouble> {
        if bytes.is_empty() || bytes.len() >= MAX_CHARS {
            return None;
        }
        // strtold reads a C string: Redis copies the value and stops at a NUL.
        let text = bytes.split(|&b| b == 0).next().unwrap_or_default();
        let (negative, body) = match text.first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let lower = body.to_ascii_lowercase();
        match lower.as_slice() {
            b"inf" | b"infinity" => return Some(LongDouble::Infinite { negative }),
            _ if lower.starts_with(b"nan") => return None,
            _ => {}
        }
        if let Some(hex) = lower.strip_prefix(b"0x") {
            parse_hex(negative, hex)
        } else {
            parse_decimal(negative, &lower)
        }
    }

    /// The sum rounded to the format; `None` when it is NaN (∞ − ∞).
    pub fn add(&self, other: &LongDouble) -> Option<LongDouble> {
        match (self, other) {
            (LongDouble::Infinite { negative: a }, LongDouble::Infinite { negative: b }) => {
                (a == b).then_some(LongDouble::Infinite { negative: *a })
            }
            (inf @ LongDouble::Infinite { .. }, _) | (_, inf @ LongDouble::Infinite { .. }) => {
                Some(inf.clone())
            }
            (
                LongDouble::Finite {
                    negative: na,
                    significand: sa,
                    exponent: ea,
                },
                LongDouble::Finite {
                    negative: nb,
                    significand: sb,
                    exponent: eb,
                },
            ) => {
                let low = (*ea).min(*eb);
                let a = BigUint::from(*sa) << (ea - low) as u64;
                let b = BigUint::from(*sb) << (eb - low) as u64;
                let (negative, sum) = if na == nb {
                    (*na, a + b)
                } else if a >= b {
                    (*na, a - b)
                } else {
                    (*nb, b - a)
                };
                Some(round(negative, sum, low, false).unwrap_or(LongDouble::Infinite { negative }))
            }
        }
    }

    /// `%.17Lf` without trailing zeros (and `-0` printed as `0`), as Redis
    /// stores and returns the result. Infinite values have no text here:
    /// Redis refuses to produce them.
    pub fn to_redis_string(&self) -> Option<String> {
        let LongDouble::Finite {
            negative,
            significand,
            exponent,
        } = self
        else {
            return None;
        };
        let digits = if *exponent >= 0 {
            (BigUint::from(*significand) << *exponent as u64)
                * BigUint::from(10u32).pow(FRACTION_DIGITS)
        } else {
            let shift = exponent.unsigned_abs();
            let scaled = BigUint::from(*significand) * BigUint::from(10u32).pow(FRACTION_DIGITS);
            let quotient = &scaled >> shift;
            let rest = scaled - (&quotient << shift);
            let half = BigUint::from(1u32) << (shift - 1);
            let odd = quotient.bit(0);
            if rest > half || (rest == half && odd) {
                quotient + 1u32
            } else {
                quotient
            }
        };
        let digits = format!("{:0>18}", digits.to_string());
        let (int, fraction) = digits.split_at(digits.len() - FRACTION_DIGITS as usize);
        let fraction = fraction.trim_end_matches('0');
        let mut out = String::with_capacity(digits.len() + 2);
        if *negative {
            out.push('-');
        }
        out.push_str(int);
        if !fraction.is_empty() {
            out.push('.');
            out.push_str(fraction);
        }
        if out == "-0" {
            out = "0".into();
        }
        Some(out)
    }
}

/// Rounds ±`n` × 2^`exponent` (plus something below its lowest bit when
/// `inexact`) to 64 significant bits, ties to even. `None` on overflow; an
/// underflow below the normal range is zero.
fn round(negative: bool, n: BigUint, exponent: i64, inexact: bool) -> Option<LongDouble> {
    let bits = n.bits();
    if bits == 0 {
        return Some(LongDouble::ZERO);
    }
    let (mut significand, mut exponent) = if bits <= PRECISION {
        let pad = PRECISION - bits;
        (n << pad, exponent - pad as i64)
    } else {
        let shift = bits - PRECISION;
        let quotient = &n >> shift;
        let rest = n - (&quotient << shift);
        let half = BigUint::from(1u32) << (shift - 1);
        let up = rest > half || (rest == half && (inexact || quotient.bit(0)));
        (
            if up { quotient + 1u32 } else { quotient },
            exponent + shift as i64,
        )
    };
    if significand.bits() > PRECISION {
        significand >>= 1u32;
        exponent += 1;
    }
    if exponent > MAX_EXPONENT {
        return None;
    }
    if exponent < MIN_EXPONENT {
        return Some(LongDouble::ZERO);
    }
    let significand = u64::try_from(significand).unwrap_or(u64::MAX);
    Some(LongDouble::Finite {
        negative,
        significand,
        exponent,
    })
}

/// A parsed value that rounds to zero although its digits are not all zero
/// is an underflow: strtold sets ERANGE and Redis refuses it.
fn checked(negative: bool, n: BigUint, exponent: i64, inexact: bool) -> Option<LongDouble> {
    let nonzero = n.bits() > 0 || inexact;
    let value = round(negative, n, exponent, inexact)?;
    let zero = matches!(value, LongDouble::Finite { significand: 0, .. });
    (!(zero && nonzero)).then_some(value)
}

/// `digits[.digits][e[±]digits]`, at least one digit, nothing after.
fn parse_decimal(negative: bool, text: &[u8]) -> Option<LongDouble> {
    let (mantissa, exp) = match text.iter().position(|&b| b == b'e') {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let (int, fraction) = match mantissa.iter().position(|&b| b == b'.') {
        Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
        None => (mantissa, &b""[..]),
    };
    if int.len() + fraction.len() == 0 || !int.iter().chain(fraction).all(u8::is_ascii_digit) {
        return None;
    }
    let exp = match exp {
        None => 0,
        Some(e) => parse_exponent(e)?,
    };
    let digits: Vec<u8> = int.iter().chain(fraction).map(|d| d - b'0').collect();
    let first = digits.iter().position(|&d| d != 0);
    let Some(first) = first else {
        return Some(LongDouble::ZERO);
    };
    let significant = (digits.len() - first) as i64;
    let scale = exp - fraction.len() as i64;
    // value < 10^(significant + scale): decide the hopeless cases before
    // building huge powers of ten (the largest long double is ~1.19e4932).
    if significant + scale > 4934 {
        return None;
    }
    if significant + scale < -4960 {
        return None;
    }
    let d = BigUint::from_radix_be(&digits[first..], 10)?;
    let ten = BigUint::from(10u32);
    if scale >= 0 {
        checked(negative, d * ten.pow(scale as u32), 0, false)
    } else {
        let divisor = ten.pow(scale.unsigned_abs() as u32);
        // Enough quotient bits for 64 significant ones and a rounding bit.
        let shift = (PRECISION + 2 + divisor.bits()).saturating_sub(d.bits());
        let numerator = d << shift;
        let quotient = &numerator / &divisor;
        let inexact = &quotient * &divisor != numerator;
        checked(negative, quotient, -(shift as i64), inexact)
    }
}

/// `hexdigits[.hexdigits][p[±]digits]` after `0x`, at least one digit.
fn parse_hex(negative: bool, text: &[u8]) -> Option<LongDouble> {
    let (mantissa, exp) = match text.iter().position(|&b| b == b'p') {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let (int, fraction) = match mantissa.iter().position(|&b| b == b'.') {
        Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
        None => (mantissa, &b""[..]),
    };
    if int.len() + fraction.len() == 0 || !int.iter().chain(fraction).all(u8::is_ascii_hexdigit) {
        return None;
    }
    let exp = match exp {
        None => 0,
        Some(e) => parse_exponent(e)?,
    };
    let digits: Vec<u8> = int
        .iter()
        .chain(fraction)
        .map(|&d| (d as char).to_digit(16).unwrap_or(0) as u8)
        .collect();
    let n = BigUint::from_radix_be(&digits, 16)?;
    let exponent = exp - 4 * fraction.len() as i64;
    if n.bits() as i64 + exponent > MAX_EXPONENT + PRECISION as i64 + 1 {
        return None;
    }
    if (n.bits() as i64) > 0 && (n.bits() as i64) + exponent < MIN_EXPONENT {
        return None;
    }
    checked(negative, n, exponent, false)
}

/// `[±]digits`, clamped far outside any representable range.
fn parse_exponent(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value: i64 = 0;
    for d in digits {
        value = (value * 10 + i64::from(d - b'0')).min(1 << 40);
    }
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(text: &str) -> LongDouble {
        LongDouble::parse(text.as_bytes()).unwrap_or_else(|| panic!("{text} did not parse"))
    }

    fn sum(a: &str, b: &str) -> String {
        ld(a).add(&ld(b)).unwrap().to_redis_string().unwrap()
    }

    /// Every expected text is what redis-server 7.0.15 (x86-64) answers to
    /// `SET k a` + `INCRBYFLOAT k b`.
    #[test]
    fn sums_print_as_redis_prints_them() {
        assert_eq!(sum("0.1", "0.2"), "0.3");
        assert_eq!(sum("10.50", "0.1"), "10.6");
        assert_eq!(sum("10.6", "-5"), "5.6");
        assert_eq!(sum("5.0e3", "2.0e2"), "5200");
        assert_eq!(sum("0", "1.5"), "1.5");
        assert_eq!(sum("3", "-3"), "0");
        assert_eq!(sum("-9223372036854775800", "0.5"), "-9223372036854775799.5");
        assert_eq!(sum("1e20", "1"), "100000000000000000000");
        assert_eq!(sum("0.1", "0"), "0.1");
        assert_eq!(sum("-0.1", "0"), "-0.1");
        assert_eq!(sum("0x10", "0x1p-1"), "16.5");
        // 18th digit rounds the 17th.
        assert_eq!(sum("0.000000000000000014", "0"), "0.00000000000000001");
        assert_eq!(sum("-0.000000000000000001", "0"), "0");
        assert_eq!(sum("1e-20", "0"), "0");
        assert_eq!(sum("100", "0.1"), "100.1");
        // Past ~19 significant digits the binary value shows, in Redis too.
        assert_eq!(sum("123456.789", "0.001"), "123456.78999999999999915");
        assert_eq!(
            sum("1e308", "1e308"),
            "199999999999999999993371759311691291321120199694831134415594095989843469737676123744\
             200253843777078640893494450108026446304269499187921167194841628860392837535918200039\
             206381557326219209014213335878306791577877829121087126122536729803237260434173178506\
             889763247582601711514636284849020905456510092687857156096"
        );
    }

    #[test]
    fn parsing_follows_string2ld() {
        for bad in [
            "", " 1", "1 ", "abc", "1e", "1e+", ".", "-", "0x", "0xp1", "nan", "NaN", "1.5x",
            "1e5000", "-1e5000", "1e-5000",
        ] {
            assert_eq!(LongDouble::parse(bad.as_bytes()), None, "{bad:?}");
        }
        for good in [
            "1",
            "+1",
            "-1.",
            ".5",
            "1E3",
            "1e+3",
            "0x1A",
            "1.5\0junk",
            "00.10",
        ] {
            assert!(LongDouble::parse(good.as_bytes()).is_some(), "{good:?}");
        }
        assert_eq!(ld("inf"), LongDouble::Infinite { negative: false });
        assert_eq!(ld("-Infinity"), LongDouble::Infinite { negative: true });
        assert_eq!(ld("1.5\0junk"), ld("1.5"));
        assert!(LongDouble::parse(&vec![b'1'; MAX_CHARS]).is_none());
    }

    #[test]
    fn infinities_and_overflow() {
        assert_eq!(ld("inf").add(&ld("-inf")), None);
        assert!(!ld("inf").add(&ld("1")).unwrap().is_finite());
        assert!(!ld("1.1e4932").add(&ld("1.1e4932")).unwrap().is_finite());
        assert!(ld("1e308").add(&ld("1e308")).unwrap().is_finite());
        assert_eq!(ld("inf").to_redis_string(), None);
    }
}
