//! What the session modules' unit tests share: small histories written as
//! one line per completed op, and the findings of one workload's rules.

use super::Guarantee;
use super::evidence::{Ctx, Found};
use super::sessions::parse;
use crate::budget::Budget;
use crate::error::CheckError;
use crate::formats;
use crate::history::History;

/// Ops as EDN, one `(process, f, key, value)` per completed op.
pub(super) fn history(ops: &[(u64, &str, &str, &str)]) -> History {
    let mut edn = String::new();
    for (i, (p, f, k, v)) in ops.iter().enumerate() {
        let invoked = if *f == "read" { "nil" } else { v };
        edn.push_str(&format!(
            "{{:index {}, :process {p}, :type :invoke, :f :{f}, :key :{k}, :value {invoked}}}\n\
             {{:index {}, :process {p}, :type :ok, :f :{f}, :key :{k}, :value {v}}}\n",
            2 * i,
            2 * i + 1
        ));
    }
    formats::parse(&edn, "test", None).expect("a readable history")
}

/// A workload's rules (`list_append` or `register`).
pub(super) type Rules =
    fn(&Ctx<'_>, &[Guarantee], &mut Vec<Found>) -> Result<Option<String>, CheckError>;

/// The findings of `rules` on `h` with `enabled`, as (guarantee,
/// explanation, chain ops).
pub(super) fn found(
    rules: Rules,
    h: &History,
    enabled: &[Guarantee],
) -> Vec<(Guarantee, String, Vec<u32>)> {
    let p = parse(h, None).expect("parse");
    let meter = Budget::default().start();
    let ctx = Ctx { history: h, p: &p, meter: &meter };
    let mut out = Vec::new();
    assert_eq!(rules(&ctx, enabled, &mut out).expect("judged"), None);
    out.into_iter()
        .map(|f| (f.guarantee, f.explanation, f.chain.iter().map(|c| c.0).collect()))
        .collect()
}
