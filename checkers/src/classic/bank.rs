//! `bank`: transfers between accounts and reads of every balance. Money is
//! neither made nor destroyed, so every read must sum to the total
//! (`--opt total=N`, required), and, unless `--opt negative-balances=true`,
//! no balance may be negative. With `--opt accounts=0,1,2` a read must show
//! exactly those accounts. Read values are maps from account to balance.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde_json::json;

use super::{bool_option, intervals};
use crate::error::CheckError;
use crate::history::{History, OpType};
use crate::html::escape;
use crate::registry::CheckSpec;
use crate::value::Value;
use crate::verdict::{Anomaly, Checker, HtmlPage, Validity, Verdict};

/// The `bank` checker.
#[derive(Clone, Debug)]
pub struct BankChecker {
    /// The total every read must sum to.
    pub total: i64,
    /// Whether negative balances are allowed.
    pub negative_balances: bool,
    /// The accounts, if the test names them.
    pub accounts: Option<BTreeSet<Value>>,
    /// Violations explained per kind at most.
    pub limit: usize,
}

impl BankChecker {
    /// From `--opt total=N` (required), `negative-balances`, `accounts`.
    pub fn from_spec(spec: &CheckSpec) -> Result<BankChecker, CheckError> {
        let total = spec.options.get("total").ok_or_else(|| {
            CheckError::BadOption("bank needs the total balance: --opt total=N".into())
        })?;
        let total = total.parse::<i64>().map_err(|_| {
            CheckError::BadOption(format!("--opt total must be an integer, not {total:?}"))
        })?;
        let accounts = spec.options.get("accounts").map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(|a| a.parse::<i64>().map(Value::Int).unwrap_or_else(|_| Value::str(a)))
                .collect()
        });
        Ok(BankChecker {
            total,
            negative_balances: bool_option(spec, "negative-balances", false)?,
            accounts,
            limit: crate::causal::limit_option(spec)?,
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

impl Checker for BankChecker {
    fn name(&self) -> &str {
        "bank"
    }

    fn check(&self, history: &History) -> Result<Verdict, CheckError> {
        let started = Instant::now();
        let ops = intervals(history)?;
        let mut reads = 0usize;
        let mut by_kind: BTreeMap<&str, Vec<Anomaly>> = BTreeMap::new();
        let mut totals = Vec::new();
        let mut transfers = (0usize, 0usize);
        for op in &ops {
            match op.inv.f.as_str() {
                "transfer" => {
                    transfers.0 += 1;
                    if op.outcome == OpType::Ok {
                        transfers.1 += 1;
                    }
                }
                "read" if op.outcome == OpType::Ok => {
                    reads += 1;
                    let Value::Map(entries) = op.result() else {
                        return Err(CheckError::BadOp {
                            location: history.locate(op.complete).field("value"),
                            message: format!(
                                "the bank checker expects a read to return a map of account to balance, not {}",
                                op.result()
                            ),
                        });
                    };
                    let balances: BTreeMap<Value, &Value> =
                        entries.iter().map(|(k, v)| (account(k), v)).collect();
                    let mut sum = 0i64;
                    let mut add =
                        |kind: &'static str, explanation: String, data: serde_json::Value| {
                            by_kind.entry(kind).or_default().push(Anomaly {
                                kind: kind.into(),
                                explanation,
                                ops: vec![op.index()],
                                data,
                            });
                        };
                    for (acct, bal) in &balances {
                        match bal.as_int() {
                            Some(b) => {
                                sum += b;
                                if b < 0 && !self.negative_balances {
                                    add(
                                        "negative-value",
                                        format!(
                                            "op {} read account {acct} with balance {b}, below zero.",
                                            op.index()
                                        ),
                                        json!({"account": acct, "balance": b}),
                                    );
                                }
                            }
                            None => add(
                                "nil-balance",
                                format!(
                                    "op {} read account {acct} with no balance ({bal}).",
                                    op.index()
                                ),
                                json!({"account": acct}),
                            ),
                        }
                    }
                    if let Some(expected) = &self.accounts {
                        let got: BTreeSet<Value> = balances.keys().cloned().collect();
                        let extra: Vec<&Value> = got.difference(expected).collect();
                        let missing: Vec<&Value> = expected.difference(&got).collect();
                        if !extra.is_empty() || !missing.is_empty() {
                            add(
                                "unexpected-key",
                                format!(
                                    "op {} read accounts that do not match the test's: extra {extra:?}, missing {missing:?}.",
                                    op.index()
                                ),
                                json!({"extra": extra, "missing": missing}),
                            );
                        }
                    }
                    if sum != self.total {
                        add(
                            "wrong-total",
                            format!(
                                "op {} (process {}) read balances summing to {sum}, not {}: {} {}.",
                                op.index(),
                                op.inv.process,
                                self.total,
                                if sum > self.total { sum - self.total } else { self.total - sum },
                                if sum > self.total { "created from nothing" } else { "vanished" }
                            ),
                            json!({"total": sum, "expected": self.total, "balances": op.result()}),
                        );
                    }
                    totals.push(json!([op.index(), op.inv.time, sum]));
                }
                _ => {}
            }
        }
        let counts: BTreeMap<&str, usize> = by_kind.iter().map(|(k, v)| (*k, v.len())).collect();
        let bad: usize = counts.values().sum();
        let validity = if bad > 0 {
            Validity::Invalid
        } else if reads == 0 {
            Validity::Unknown
        } else {
            Validity::Valid
        };
        let summary = match validity {
            Validity::Valid => {
                format!("all {reads} reads sum to {} with no negative balance", self.total)
            }
            Validity::Unknown => "no successful read to check".into(),
            Validity::Invalid => format!(
                "{} problem{} in {reads} reads ({})",
                bad,
                if bad == 1 { "" } else { "s" },
                counts.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
            ),
        };
        let mut v = Verdict::new("bank", validity, summary);
        if validity == Validity::Unknown {
            v.unknown_reason = Some("the history has no ok read".into());
        }
        v.anomalies =
            by_kind.into_values().flat_map(|list| list.into_iter().take(self.limit)).collect();
        v.details = json!({
            "reads": reads,
            "transfers_attempted": transfers.0,
            "transfers_acknowledged": transfers.1,
            "expected_total": self.total,
            "errors": counts,
            "totals": totals,
        });
        v.elapsed = started.elapsed();
        Ok(v)
    }

    fn render_html(&self, _history: &History, verdict: &Verdict) -> Vec<HtmlPage> {
        let mut body = format!(
            "<h1>Bank</h1>\n<p class=\"{}\">{}</p>\n",
            verdict.validity.as_str(),
            escape(&verdict.summary)
        );
        if let Some(totals) = verdict.details["totals"].as_array().filter(|t| !t.is_empty()) {
            body.push_str(&format!(
                "<h2>Total of each read</h2>\n<p class=\"muted\">In history order; the line is the expected total {}.</p>\n{}",
                self.total,
                totals_plot(totals, self.total)
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

fn totals_plot(totals: &[serde_json::Value], expected: i64) -> String {
    let vals: Vec<f64> = totals.iter().map(|t| t[2].as_f64().unwrap_or(0.0)).collect();
    let lo = vals.iter().copied().fold(expected as f64, f64::min);
    let hi = vals.iter().copied().fold(expected as f64, f64::max);
    let span = (hi - lo).max(1.0);
    let (w, h, pad) = (900.0, 240.0, 30.0);
    let x = |i: usize| pad + (w - 2.0 * pad) * (i as f64 + 0.5) / vals.len() as f64;
    let y = |v: f64| h - pad - (h - 2.0 * pad) * (v - lo) / span;
    let (right, line_y, bottom) = (w - pad, y(expected as f64), h - pad);
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
            if (*v - expected as f64).abs() < 0.5 { "#1e88e5" } else { "#e53935" }
        ));
    }
    svg.push_str("</svg>\n");
    svg
}
