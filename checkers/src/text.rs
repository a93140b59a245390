//! Words for verdicts, shared by every checker: counts with their noun,
//! sets of values written compactly, the first few of a list of ops.

use crate::value::Value;

/// `1 key`, `3 keys`, `2 processes`.
pub fn plural(n: usize, noun: &str) -> String {
    match (n, noun.ends_with('s')) {
        (1, _) => format!("1 {noun}"),
        (_, true) => format!("{n} {noun}es"),
        _ => format!("{n} {noun}s"),
    }
}

/// Sorted values written compactly, Jepsen style: `#{1..4 7 9..12}`.
pub fn compact<'a>(values: impl IntoIterator<Item = &'a Value>) -> String {
    let mut ints: Vec<i64> = Vec::new();
    let mut others: Vec<String> = Vec::new();
    for v in values {
        match v.as_int() {
            Some(i) => ints.push(i),
            None => others.push(v.to_string()),
        }
    }
    ints.sort_unstable();
    ints.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ints.len() {
        let start = ints[i];
        let mut end = start;
        while i + 1 < ints.len() && ints[i + 1] == end + 1 {
            i += 1;
            end = ints[i];
        }
        parts.push(if end > start { format!("{start}..{end}") } else { start.to_string() });
        i += 1;
    }
    others.sort();
    parts.extend(others);
    format!("#{{{}}}", parts.join(" "))
}

/// Up to `n` items, then how many more.
pub fn first_few(items: &[u64], n: usize) -> String {
    let shown: Vec<String> = items.iter().take(n).map(|i| format!("op {i}")).collect();
    match items.len().saturating_sub(n) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_ranges_like_jepsen() {
        let v: Vec<Value> =
            [1, 2, 3, 5, 7, 8].into_iter().map(Value::Int).chain([Value::str("a")]).collect();
        assert_eq!(compact(&v), "#{1..3 5 7..8 \"a\"}");
        assert_eq!(compact(&[]), "#{}");
    }

    #[test]
    fn plural_and_first_few_read_as_english() {
        assert_eq!(plural(1, "key"), "1 key");
        assert_eq!(plural(2, "process"), "2 processes");
        assert_eq!(first_few(&[1, 2, 3], 2), "op 1, op 2 and 1 more");
    }
}
