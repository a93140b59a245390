//! Integers beyond 64 bits in JSON, kept exact.
//!
//! serde_json hands an integer literal that fits in neither `i64` nor `u64`
//! to the reader as an `f64`, rounded: a read of 10^30 + 1 would then equal
//! a write of 10^30, and a checker would pass a history it must fail. Its
//! `arbitrary_precision` feature would keep the digits, but for every number
//! of every history, at the price of an allocation each (and for every crate
//! that uses serde_json in the same build). Such integers are rare, so the
//! readers instead look for them in the text first: a run of 19 or more
//! digits is the only place one can hide. Where there is one, each integer
//! literal beyond 64 bits becomes `{"$bigint": "digits"}`, the documented
//! JSON encoding of [`Value::BigInt`](crate::Value::BigInt), which the value
//! reader turns back into the exact integer. Text without such a run is
//! returned as it is, without a copy.

use std::borrow::Cow;

/// The shortest digit run that can hold an integer beyond 64 bits
/// (`i64::MIN` has 19 digits).
const SHORTEST: usize = 19;

/// `json` with every integer literal beyond 64 bits (outside strings)
/// written as `{"$bigint": "digits"}`; borrowed when there is none.
pub(crate) fn protect_big_integers(json: &str) -> Cow<'_, str> {
    if !has_long_digit_run(json.as_bytes()) {
        return Cow::Borrowed(json);
    }
    let bytes = json.as_bytes();
    let mut out = String::with_capacity(json.len() + 32);
    let mut copied = 0;
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 2,
                b'"' => {
                    in_string = false;
                    i += 1;
                }
                _ => i += 1,
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                let mut end = i + usize::from(b == b'-');
                while end < bytes.len() && bytes[end].is_ascii_digit() {
                    end += 1;
                }
                // A fraction or exponent makes it a float, which JSON
                // readers may round like any float; only integers are ours.
                let is_float = end < bytes.len() && matches!(bytes[end], b'.' | b'e' | b'E');
                let mut token_end = end;
                while token_end < bytes.len()
                    && matches!(bytes[token_end], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    token_end += 1;
                }
                let literal = &json[start..end];
                if !is_float && beyond_64_bits(literal) {
                    out.push_str(&json[copied..start]);
                    out.push_str("{\"$bigint\":\"");
                    out.push_str(literal);
                    out.push_str("\"}");
                    copied = end;
                }
                i = token_end.max(start + 1);
            }
            _ => i += 1,
        }
    }
    out.push_str(&json[copied..]);
    Cow::Owned(out)
}

/// Whether the bytes hold a run of at least [`SHORTEST`] ASCII digits.
fn has_long_digit_run(bytes: &[u8]) -> bool {
    let mut run = 0;
    for &b in bytes {
        if b.is_ascii_digit() {
            run += 1;
            if run >= SHORTEST {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// Whether an integer literal (optional `-`, digits) fits neither `i64`
/// nor, when positive, `u64`: the ones serde_json would round.
fn beyond_64_bits(literal: &str) -> bool {
    let digits = literal.trim_start_matches('-');
    if digits.len() < SHORTEST || digits.is_empty() {
        return false;
    }
    if literal.starts_with('-') {
        literal.parse::<i64>().is_err()
    } else {
        literal.parse::<u64>().is_err()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_without_long_integers_is_not_copied() {
        let line = r#"{"process":0,"type":"ok","f":"read","value":12345678901234567}"#;
        assert!(matches!(protect_big_integers(line), Cow::Borrowed(_)));
    }

    #[test]
    fn integers_beyond_64_bits_are_protected_and_nothing_else() {
        let line = concat!(
            r#"{"value":[1000000000000000000000000000001,-9223372036854775809,"#,
            r#"18446744073709551615,1.0000000000000000000001,1e30000000000000000000,"#,
            r#""12345678901234567890123"]}"#
        );
        assert_eq!(
            protect_big_integers(line),
            concat!(
                r#"{"value":[{"$bigint":"1000000000000000000000000000001"},"#,
                r#"{"$bigint":"-9223372036854775809"},18446744073709551615,"#,
                r#"1.0000000000000000000001,1e30000000000000000000,"#,
                r#""12345678901234567890123"]}"#
            )
        );
    }

    #[test]
    fn escaped_quotes_do_not_end_a_string() {
        let line = r#"{"value":"a \"99999999999999999999999\" b","key":99999999999999999999999}"#;
        assert_eq!(
            protect_big_integers(line),
            r#"{"value":"a \"99999999999999999999999\" b","key":{"$bigint":"99999999999999999999999"}}"#
        );
    }
}
