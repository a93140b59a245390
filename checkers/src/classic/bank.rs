//! `bank`: transfers between accounts and reads of every balance. Money is
//! neither made nor destroyed, so every read must sum to the total, and,
//! unless `--opt negative-balances=true`, no balance may be negative; every
//! read must show exactly the test's accounts. Read values are maps from
//! account to balance.
//!
//! The total is `--opt total=N` and the accounts `--opt accounts=0,1,2`;
//! left out, they are taken from the first ok read (its sum and its keys),
//! as elle-cli does, and the verdict says so: a history whose first read is
//! already wrong then shows every later read as wrong instead.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::{Halt, Interval, Pass, judged, run, wide};
use crate::budget::Budget;
use crate::error::CheckError;
use crate::history::{History, OpType};
use crate::html::escape;
use crate::spec::CheckSpec;
use crate::value::Value;
use crate::verdict::{Anomaly, Checker, HtmlPage, Verdict};

/// The `bank` checker.
#[derive(Clone, Debug)]
pub struct BankChecker {
    /// The total every read must sum to; the first ok read's sum when
    /// the test does not name it.
    pub total: Option<i128>,
    /// Whether negative balances are allowed.
    pub negative_balances: bool,
    /// The accounts; the first ok read's when the test does not name them.
    pub accounts: Option<BTreeSet<Value>>,
    /// Violations explained per kind at most.
    pub limit: usize,
    /// Time and memory limits.
    pub budget: Budget,
}

impl BankChecker {
    /// From `--opt total=N`, `negative-balances`, `accounts`,
    /// `max-anomalies` and the budget.
    pub fn from_spec(spec: &CheckSpec) -> Result<BankChecker, CheckError> {
        let total = spec
            .option("total")
            .map(|total| {
                total.parse::<i128>().map_err(|_| {
                    CheckError::BadOption(format!("--opt total must be an integer, not {total:?}"))
                })
            })
            .transpose()?;
        let accounts = spec.options.get("accounts").map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(|a| a.parse::<i64>().map(Value::Int).unwrap_or_else(|_| Value::str(a)))
                .collect()
        });
        Ok(BankChecker {
            total,
            negative_balances: spec.bool_option("negative-balances", false)?,
            accounts,
            limit: spec.max_anomalies()?,
            budget: spec.budget,
        })
    }
}

/// Keys of a read's balance map as accounts: keywords and strings that are
/// numbers become numbers, so EDN `{:0 10}`, JSON `{"0": 10}` and `{0 10}` agree.
fn account(k: &Value) -> Value {
    match k.as_str().and_then(|s| s.parse::<i64>().ok()) {
        Some(i) => Value::Int(i),
        None => k.clone(),
    }
}

/// An ok read's balances by account.
fn balances<'a>(
    history: &History,
    op: &Interval<'a>,
) -> Result<BTreeMap<Value, &'a Value>, CheckError> {
    let Value::Map(entries) = op.result() else {
        return Err(CheckError::BadOp {
            location: history.locate(op.complete).field("value"),
            message: format!(
                "the bank checker expects a read to return a map of account to balance, not {}",
                op.result()
            ),
        });
    };
    Ok(entries.iter().map(|(k, v)| (account(k), v)).collect())
}

/// What every read is held to, and where each came from: the test, or the
/// first ok read when the test does not say.
struct Expected {
    total: i128,
    total_source: String,
    accounts: Option<BTreeSet<Value>>,
    accounts_source: String,
    /// Whether the total was inferred from a read.
    inferred: bool,
}

/// Problems found in reads, by kind.
type Problems = BTreeMap<&'static str, Vec<Anomaly>>;

impl BankChecker {
    fn expected(&self, pass: &Pass<'_>) -> Result<Expected, CheckError> {
        let first = pass
            .ops
            .iter()
            .filter(|op| op.inv.f == "read" && op.outcome == OpType::Ok)
            .min_by_key(|op| op.complete);
        let first = match first {
            Some(op) => Some((op.index(), balances(pass.history, op)?)),
            None => None,
        };
        let (total, total_source) = match (self.total, &first) {
            (Some(t), _) => (t, "given".to_owned()),
            (None, Some((op, balances))) => (
                balances.values().filter_map(|b| b.as_int()).map(i128::from).sum(),
                format!("the sum of the first ok read, op {op}"),
            ),
            (None, None) => (0, "none: no ok read".to_owned()),
        };
        let (accounts, accounts_source) = match (&self.accounts, &first) {
            (Some(a), _) => (Some(a.clone()), "given".to_owned()),
            (None, Some((op, balances))) => (
                Some(balances.keys().cloned().collect()),
                format!("the keys of the first ok read, op {op}"),
            ),
            (None, None) => (None, "none: no ok read".to_owned()),
        };
        let inferred = self.total.is_none() && first.is_some();
        Ok(Expected { total, total_source, accounts, accounts_source, inferred })
    }

    /// Judges one ok read against what is expected, adding what is wrong
    /// with it to `problems`; returns its sum.
    fn read(
        &self,
        pass: &Pass<'_>,
        op: &Interval<'_>,
        expected: &Expected,
        problems: &mut Problems,
    ) -> Result<i128, CheckError> {
        let balances = balances(pass.history, op)?;
        let mut add = |kind: &'static str, explanation: String, data: serde_json::Value| {
            let anomaly = Anomaly { kind: kind.into(), explanation, ops: vec![op.index()], data };
            problems.entry(kind).or_default().push(anomaly);
        };
        // 128 bits: 64-bit balances must not wrap when summed.
        let mut sum = 0i128;
        for (acct, bal) in &balances {
            if let Value::BigInt(_) = bal {
                // Summing it would need arbitrary precision; calling it
                // "no balance" would be a lie.
                return Err(CheckError::BadOp {
                    location: pass.history.locate(op.complete).field("value"),
                    message: format!(
                        "account {acct} holds {bal}, beyond 64 bits; the bank checker sums 64-bit balances"
                    ),
                });
            }
            match bal.as_int() {
                Some(b) => {
                    sum += i128::from(b);
                    if b < 0 && !self.negative_balances {
                        let explanation = format!(
                            "op {} read account {acct} with balance {b}, below zero.",
                            op.index()
                        );
                        add("negative-value", explanation, json!({"account": acct, "balance": b}));
                    }
                }
                None => {
                    let explanation =
                        format!("op {} read account {acct} with no balance ({bal}).", op.index());
                    add("nil-balance", explanation, json!({"account": acct}));
                }
            }
        }
        if let Some(want) = &expected.accounts {
            let got: BTreeSet<Value> = balances.keys().cloned().collect();
            let extra: Vec<&Value> = got.difference(want).collect();
            let missing: Vec<&Value> = want.difference(&got).collect();
            let show =
                |vs: &[&Value]| vs.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ");
            let mut parts = Vec::new();
            if !extra.is_empty() {
                parts.push(format!("extra {}", show(&extra)));
            }
            if !missing.is_empty() {
                parts.push(format!("missing {}", show(&missing)));
            }
            if !parts.is_empty() {
                let explanation = format!(
                    "op {} read accounts that do not match the test's ({}): {}.",
                    op.index(),
                    expected.accounts_source,
                    parts.join("; ")
                );
                add("unexpected-key", explanation, json!({"extra": extra, "missing": missing}));
            }
        }
        let total = expected.total;
        if sum != total {
            let explanation = format!(
                "op {} (process {}) read balances summing to {sum}, not {total}: {} {}.",
                op.index(),
                op.inv.process,
                (sum - total).abs(),
                if sum > total { "created from nothing" } else { "vanished" }
            );
            let data =
                json!({"total": wide(sum), "expected": wide(total), "balances": op.result()});
            add("wrong-total", explanation, data);
        }
        Ok(sum)
    }

    fn judge(&self, pass: &Pass<'_>) -> Result<Verdict, Halt> {
        let expected = self.expected(pass)?;
        let mut reads = 0usize;
        let mut problems = Problems::new();
        let mut totals = Vec::new();
        let mut transfers = (0usize, 0usize);
        for op in &pass.ops {
            pass.tick()?;
            match op.inv.f.as_str() {
                "transfer" => {
                    transfers.0 += 1;
                    transfers.1 += usize::from(op.outcome == OpType::Ok);
                }
                "read" if op.outcome == OpType::Ok => {
                    reads += 1;
                    let sum = self.read(pass, op, &expected, &mut problems)?;
                    totals.push(json!([op.index(), op.inv.time, wide(sum)]));
                }
                _ => {}
            }
        }
        let counts: BTreeMap<&str, usize> = problems.iter().map(|(k, v)| (*k, v.len())).collect();
        let bad: usize = counts.values().sum();
        let total = expected.total;
        let mut summary = if bad > 0 {
            format!(
                "{} problem{} in {reads} reads ({})",
                bad,
                if bad == 1 { "" } else { "s" },
                counts.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
            )
        } else if reads == 0 {
            "no successful read to check".into()
        } else {
            format!("all {reads} reads sum to {total} with no negative balance")
        };
        if expected.inferred {
            summary.push_str(&format!("; the total, {total}, is {}", expected.total_source));
        }
        let unobserved = (reads == 0).then_some("the history has no ok read");
        let mut v = judged("bank", bad > 0, unobserved, summary);
        v.anomalies =
            problems.into_values().flat_map(|list| list.into_iter().take(self.limit)).collect();
        v.details = json!({
            "reads": reads,
            "transfers_attempted": transfers.0,
            "transfers_acknowledged": transfers.1,
            "expected_total": wide(total),
            "total_source": expected.total_source,
            "accounts": expected.accounts,
            "accounts_source": expected.accounts_source,
            "errors": counts,
            "totals": totals,
        });
        Ok(v)
    }
}

impl Checker for BankChecker {
    fn check(&self, history: &History) -> Result<Verdict, CheckError> {
        run(self.name(), self.budget, history, |pass| self.judge(pass))
    }

    fn name(&self) -> &str {
        "bank"
    }

    fn render_html(&self, _history: &History, verdict: &Verdict) -> Vec<HtmlPage> {
        let mut body = format!(
            "<h1>Bank</h1>\n<p class=\"{}\">{}</p>\n",
            verdict.validity.as_str(),
            escape(&verdict.summary)
        );
        let expected = verdict.details["expected_total"].as_f64().unwrap_or(0.0);
        if let Some(totals) = verdict.details["totals"].as_array().filter(|t| !t.is_empty()) {
            body.push_str(&format!(
                "<h2>Total of each read</h2>\n<p class=\"muted\">In history order; the line is the expected total {expected}.</p>\n{}",
                totals_plot(totals, expected)
            ));
        }
        for a in &verdict.anomalies {
            body.push_str(&format!(
                "<h3>{}</h3>\n<div class=\"explanation\">{}</div>\n",
                escape(&a.kind),
                escape(&a.explanation)
            ));
        }
        vec![HtmlPage { name: "bank".into(), title: "Bank".into(), body }]
    }
}

fn totals_plot(totals: &[serde_json::Value], expected: f64) -> String {
    let vals: Vec<f64> = totals.iter().map(|t| t[2].as_f64().unwrap_or(0.0)).collect();
    let lo = vals.iter().copied().fold(expected, f64::min);
    let hi = vals.iter().copied().fold(expected, f64::max);
    let span = (hi - lo).max(1.0);
    let (w, h, pad) = (900.0, 240.0, 30.0);
    let x = |i: usize| pad + (w - 2.0 * pad) * (i as f64 + 0.5) / vals.len() as f64;
    let y = |v: f64| h - pad - (h - 2.0 * pad) * (v - lo) / span;
    let (right, line_y, bottom) = (w - pad, y(expected), h - pad);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\">\n\
         <line x1=\"{pad}\" x2=\"{right}\" y1=\"{line_y:.1}\" y2=\"{line_y:.1}\" stroke=\"#2e7d32\" stroke-dasharray=\"5 4\"/>\n\
         <text x=\"2\" y=\"{pad:.0}\" font-size=\"11\">{hi}</text><text x=\"2\" y=\"{bottom:.0}\" font-size=\"11\">{lo}</text>\n"
    );
    for (i, v) in vals.iter().enumerate().take(5000) {
        svg.push_str(&format!(
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{}\"/>\n",
            x(i),
            y(*v),
            if (*v - expected).abs() < 0.5 { "#1e88e5" } else { "#e53935" }
        ));
    }
    svg.push_str("</svg>\n");
    svg
}
