//! Redis's glob-style pattern matching (`stringmatchlen` in redis/src/util.c),
//! byte for byte: `*`, `?`, `[…]` classes with `^` negation, `a-z` ranges
//! (either order) and `\` escapes, including Redis's quirks:
//! - an unterminated class (`[abc`) matches as if it were closed;
//! - a `\` at the end of the pattern matches a literal `\`;
//! - `*` does not match an empty string on its own: callers that treat a lone
//!   `*` as "no pattern" (SCAN, KEYS) must do so themselves, as Redis does.
//!
//! Matching is case-sensitive (Redis's `nocase` is never used by MATCH/KEYS).

/// Nesting limit for `*` recursion, as Redis (protection against abusive patterns).
const MAX_NESTING: usize = 1000;

/// Whether `string` matches the glob `pattern`, exactly as redis-server decides.
pub fn matches(pattern: &[u8], string: &[u8]) -> bool {
    let mut skip_longer = false;
    match_at(pattern, string, &mut skip_longer, 0)
}

/// The byte at `i`, or 0 past the end (the C code reads the NUL terminator there).
fn at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

fn match_at(pattern: &[u8], string: &[u8], skip_longer: &mut bool, nesting: usize) -> bool {
    if nesting > MAX_NESTING {
        return false;
    }
    // `p`/`s` index the rest of pattern and string; their lengths are what remains.
    let (mut p, mut s) = (0usize, 0usize);
    while p < pattern.len() && s < string.len() {
        match pattern[p] {
            b'*' => {
                while p < pattern.len() && at(pattern, p + 1) == b'*' {
                    p += 1;
                }
                if pattern.len() - p == 1 {
                    return true;
                }
                while s < string.len() {
                    if match_at(&pattern[p + 1..], &string[s..], skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s += 1;
                }
                // No match for the rest of the pattern anywhere in the rest of
                // the string: longer matches for earlier stars cannot help.
                *skip_longer = true;
                return false;
            }
            b'?' => s += 1,
            b'[' => {
                p += 1;
                let negate = at(pattern, p) == b'^';
                if negate {
                    p += 1;
                }
                let c = string[s];
                let mut matched = false;
                loop {
                    let remaining = pattern.len() - p;
                    if at(pattern, p) == b'\\' && remaining >= 2 {
                        p += 1;
                        if pattern[p] == c {
                            matched = true;
                        }
                    } else if at(pattern, p) == b']' {
                        break;
                    } else if remaining == 0 {
                        // Unterminated class: step back so the `p += 1` below ends the pattern.
                        p -= 1;
                        break;
                    } else if remaining >= 3 && pattern[p + 1] == b'-' {
                        let (mut start, mut end) = (pattern[p], pattern[p + 2]);
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        p += 2;
                        if (start..=end).contains(&c) {
                            matched = true;
                        }
                    } else if pattern[p] == c {
                        matched = true;
                    }
                    p += 1;
                }
                if negate {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s += 1;
            }
            first => {
                let literal = if first == b'\\' && pattern.len() - p >= 2 {
                    p += 1;
                    pattern[p]
                } else {
                    first
                };
                if literal != string[s] {
                    return false;
                }
                s += 1;
            }
        }
        p += 1;
        if s == string.len() {
            while at(pattern, p) == b'*' && p < pattern.len() {
                p += 1;
            }
            break;
        }
    }
    p >= pattern.len() && s == string.len()
}

#[cfg(test)]
mod tests {
    use super::matches;

    fn m(pattern: &str, string: &str) -> bool {
        matches(pattern.as_bytes(), string.as_bytes())
    }

    #[test]
    fn stars_and_question_marks() {
        assert!(m("a*", "a"));
        assert!(m("a*", "abc"));
        assert!(!m("a*", "ba"));
        assert!(m("*c", "abc"));
        assert!(m("a*c", "abbbc"));
        assert!(m("a**c", "ac"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("*", "x"));
        // Redis's quirk: a lone star does not match the empty string here.
        assert!(!m("*", ""));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("a*", "a"));
        assert!(m("a***", "a"));
    }

    #[test]
    fn classes_ranges_and_negation() {
        assert!(m("h[ae]llo", "hello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"), "reversed ranges are swapped");
        assert!(!m("h[a-b]llo", "hcllo"));
        assert!(m("[\\]]", "]"));
        // `a-]` is read as the range `]`..`a`, and the class is then unterminated.
        assert!(!m("[a-]", "-"));
        assert!(m("[a-]", "_"));
        assert!(m("[abc", "a"), "an unterminated class still matches");
        assert!(!m("[abc", "d"));
        assert!(
            !m("x[", "x["),
            "an empty unterminated class matches nothing"
        );
    }

    #[test]
    fn escapes() {
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("a\\?b", "a?b"));
        assert!(m("a\\", "a\\"), "a trailing backslash is literal");
        assert!(m("\\[a]", "[a]"));
    }

    #[test]
    fn abusive_patterns_end_quickly() {
        let pattern = "a*".repeat(50) + "b";
        let string = "a".repeat(100);
        let started = std::time::Instant::now();
        assert!(!m(&pattern, &string));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
