//! Latency and throughput over time, drawn as SVG by hand: no gnuplot, no
//! JavaScript, so the pictures survive printing and saving.
//!
//! Both stay small at a million operations: the latency scatter keeps one
//! point per outcome per 3×3-pixel cell (a denser plot looks the same), and
//! quantiles and throughput are computed per time bucket.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;

use checkers::OpType;
use checkers::html::escape;

use crate::intervals::{Clock, Intervals};
use crate::run_results::quantile;

/// Plot width in SVG units.
const W: f64 = 1000.0;
/// Left margin (y-axis labels).
const ML: f64 = 64.0;
/// Right margin.
const MR: f64 = 12.0;
/// Top margin.
const MT: f64 = 22.0;
/// Bottom margin (x-axis labels).
const MB: f64 = 30.0;
/// Functions drawn in a latency panel of their own; the rest share "other".
const MAX_PANELS: usize = 6;
/// Time buckets for quantile lines.
const QUANTILE_BUCKETS: usize = 60;
/// Time buckets for throughput.
const RATE_BUCKETS: usize = 100;

/// Fill colour for a fault kind's shaded periods.
pub fn fault_colour(kind: &str) -> &'static str {
    match kind {
        "partition" => "rgba(33,150,243,0.16)",
        "kill" => "rgba(229,57,53,0.14)",
        "pause" => "rgba(142,36,170,0.14)",
        "clock" => "rgba(255,179,0,0.22)",
        "packet" => "rgba(0,137,123,0.16)",
        "file" => "rgba(109,76,65,0.18)",
        _ => "rgba(96,125,139,0.18)",
    }
}

/// Stroke colour for an outcome.
pub fn outcome_colour(outcome: OpType) -> &'static str {
    match outcome {
        OpType::Ok => "#2e7d32",
        OpType::Fail => "#c62828",
        OpType::Info | OpType::Invoke => "#ef6c00",
    }
}

/// Distinct colours for functions in the throughput plot.
const FUNCTION_COLOURS: [&str; 8] =
    ["#1565c0", "#6a1b9a", "#00838f", "#ad1457", "#558b2f", "#4e342e", "#37474f", "#f9a825"];

/// How the x axis maps history times to the plot.
struct XAxis {
    t0: u64,
    t1: u64,
    clock: Clock,
}

impl XAxis {
    fn of(iv: &Intervals) -> XAxis {
        let t0 = iv.start_time();
        let t1 = iv.end_time.max(t0 + 1);
        XAxis { t0, t1, clock: iv.clock }
    }
    fn x(&self, t: u64) -> f64 {
        ML + (t.saturating_sub(self.t0) as f64 / (self.t1 - self.t0) as f64) * (W - ML - MR)
    }
    /// Seconds (or positions) since `t0`, for labels.
    fn value(&self, t: u64) -> f64 {
        let d = t.saturating_sub(self.t0) as f64;
        match self.clock {
            Clock::Nanos => d / 1e9,
            Clock::Logical => d,
        }
    }
    fn label(&self) -> &'static str {
        match self.clock {
            Clock::Nanos => "time since start (s)",
            Clock::Logical => "position in history (no timestamps recorded)",
        }
    }
    fn span(&self) -> f64 {
        self.value(self.t1)
    }
}

/// "Nice" tick values (1, 2, 5 × 10^k) covering `0..=max`.
fn ticks(max: f64, want: usize) -> Vec<f64> {
    if max <= 0.0 || !max.is_finite() {
        return vec![0.0];
    }
    let raw = max / want.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step =
        [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    (0..).map(|i| i as f64 * step).take_while(|v| *v <= max * 1.0001).collect()
}

fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').to_owned()
    }
}

fn svg_open(out: &mut String, h: f64, title: &str, class: &str) {
    let _ = write!(
        out,
        "<svg class=\"{class}\" viewBox=\"0 0 {W} {h}\" width=\"100%\" role=\"img\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title>{}</title>",
        escape(title)
    );
}

/// Shaded fault periods and the x axis with its ticks.
fn frame(out: &mut String, iv: &Intervals, x: &XAxis, h: f64) {
    let (top, bottom) = (MT, h - MB);
    for f in &iv.faults {
        let (x0, x1) = (x.x(f.start), x.x(f.end).max(x.x(f.start) + 1.0));
        let _ = write!(
            out,
            "<rect class=\"fault\" x=\"{x0:.1}\" y=\"{top}\" width=\"{:.1}\" height=\"{:.1}\" \
             fill=\"{}\"><title>{} {}{}</title></rect>",
            x1 - x0,
            bottom - top,
            fault_colour(&f.kind),
            escape(&f.kind),
            escape(&f.detail),
            if f.open_ended { " (never stopped)" } else { "" }
        );
    }
    let _ = write!(
        out,
        "<line x1=\"{ML}\" y1=\"{bottom}\" x2=\"{}\" y2=\"{bottom}\" stroke=\"#999\"/>",
        W - MR
    );
    let span = x.span();
    for v in ticks(span, 10) {
        let px = ML + v / span.max(f64::MIN_POSITIVE) * (W - ML - MR);
        let _ = write!(
            out,
            "<line x1=\"{px:.1}\" y1=\"{bottom}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"#999\"/>\
             <text x=\"{px:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
            bottom + 4.0,
            bottom + 15.0,
            fmt_num(v)
        );
    }
    let _ = write!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#666\">{}</text>",
        (ML + W - MR) / 2.0,
        h - 3.0,
        x.label()
    );
}

/// A horizontal grid line at `py`, labelled `value` on the y axis.
fn y_gridline(out: &mut String, py: f64, value: f64) {
    let _ = write!(
        out,
        "<line x1=\"{ML}\" y1=\"{py:.1}\" x2=\"{}\" y2=\"{py:.1}\" stroke=\"#eee\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
        W - MR,
        ML - 4.0,
        py + 3.0,
        fmt_num(value)
    );
}

/// A legend line of fault kinds present.
fn fault_legend(iv: &Intervals) -> String {
    let kinds: std::collections::BTreeSet<&str> =
        iv.faults.iter().map(|f| f.kind.as_str()).collect();
    if kinds.is_empty() {
        return "<p class=\"legend muted\">No fault periods in this history.</p>".into();
    }
    let mut s = String::from("<p class=\"legend\">Shaded: ");
    for k in kinds {
        let _ = write!(
            s,
            "<span class=\"swatch\" style=\"background:{}\"></span>{} ",
            fault_colour(k),
            escape(k)
        );
    }
    s.push_str("</p>");
    s
}

/// The latency section: one scatter panel per function, with quantile lines.
pub fn latency(iv: &Intervals) -> String {
    let x = XAxis::of(iv);
    let unit = match iv.clock {
        Clock::Nanos => 1e6,
        Clock::Logical => 1.0,
    };
    let unit_name = match iv.clock {
        Clock::Nanos => "ms",
        Clock::Logical => "events",
    };
    // Group functions into panels: the busiest MAX_PANELS, then "other".
    let mut per_f: Vec<(usize, u64)> = vec![(0, 0); iv.functions.len()];
    for (i, slot) in per_f.iter_mut().enumerate() {
        slot.0 = i;
    }
    for it in &iv.items {
        per_f[it.f as usize].1 += 1;
    }
    per_f.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut panel_of = vec![MAX_PANELS; iv.functions.len()];
    let mut names: Vec<String> = Vec::new();
    for (rank, (f, n)) in per_f.iter().enumerate() {
        if *n == 0 {
            continue;
        }
        if rank < MAX_PANELS {
            panel_of[*f] = names.len();
            names.push(iv.functions[*f].clone());
        }
    }
    if per_f.len() > MAX_PANELS && per_f[MAX_PANELS..].iter().any(|(_, n)| *n > 0) {
        names.push("other".into());
        for (f, _) in &per_f[MAX_PANELS..] {
            panel_of[*f] = names.len() - 1;
        }
    }

    let mut out = String::new();
    out.push_str(&fault_legend(iv));
    let mut never = 0u64;
    for (panel, name) in names.iter().enumerate() {
        let pts: Vec<(u64, u64, OpType)> = iv
            .items
            .iter()
            .filter(|it| panel_of[it.f as usize] == panel)
            .filter_map(|it| match it.latency() {
                Some(l) => Some((it.start, l, it.outcome)),
                None => {
                    never += 1;
                    None
                }
            })
            .collect();
        out.push_str(&latency_panel(iv, &x, name, &pts, unit, unit_name));
    }
    if names.is_empty() {
        out.push_str("<p class=\"muted\">No client operations to plot.</p>");
    }
    if never > 0 {
        let _ = write!(
            out,
            "<p class=\"muted\">{never} operation(s) never completed and have no latency to plot; \
             the timeline draws them running to the end.</p>"
        );
    }
    out
}

fn latency_panel(
    iv: &Intervals,
    x: &XAxis,
    name: &str,
    pts: &[(u64, u64, OpType)],
    unit: f64,
    unit_name: &str,
) -> String {
    let h = 240.0;
    let mut out = String::new();
    svg_open(&mut out, h, &format!("latency of {name}"), "plot latency");
    frame(&mut out, iv, x, h);
    let (top, bottom) = (MT, h - MB);
    let _ = write!(
        out,
        "<text x=\"{ML}\" y=\"14\" font-size=\"12\" font-weight=\"600\">{} — latency ({unit_name}, log scale), {} ops</text>",
        escape(name),
        pts.len()
    );
    if pts.is_empty() {
        out.push_str("</svg>");
        return out;
    }
    // Log scale between powers of ten around the data; zero latencies sit on the floor.
    let positive = pts.iter().map(|p| p.1).filter(|l| *l > 0);
    let lo = positive.clone().min().map(|l| l as f64 / unit).unwrap_or(1.0);
    let hi = positive.max().map(|l| l as f64 / unit).unwrap_or(1.0);
    let (lo_e, hi_e) = (lo.log10().floor(), hi.log10().ceil().max(lo.log10().floor() + 1.0));
    let y = |l: u64| {
        let v = (l as f64 / unit).max(10f64.powf(lo_e));
        bottom - (v.log10() - lo_e) / (hi_e - lo_e) * (bottom - top)
    };
    let mut e = lo_e;
    while e <= hi_e {
        let py = bottom - (e - lo_e) / (hi_e - lo_e) * (bottom - top);
        y_gridline(&mut out, py, 10f64.powf(e));
        e += 1.0;
    }
    // Level of detail: one dot per outcome per 3×3 cell.
    let mut seen: HashSet<(u8, i32, i32)> = HashSet::new();
    let mut by_outcome: BTreeMap<u8, String> = BTreeMap::new();
    for &(t, l, o) in pts {
        let (px, py) = (x.x(t), y(l));
        let code = match o {
            OpType::Ok => 0u8,
            OpType::Fail => 1,
            _ => 2,
        };
        if seen.insert((code, (px / 3.0) as i32, (py / 3.0) as i32)) {
            let _ = write!(by_outcome.entry(code).or_default(), "M{px:.1} {py:.1}h0");
        }
    }
    for (code, path) in &by_outcome {
        let o = [OpType::Ok, OpType::Fail, OpType::Info][*code as usize];
        let _ = write!(
            out,
            "<path class=\"dots {}\" d=\"{path}\" stroke=\"{}\" stroke-width=\"3\" stroke-linecap=\"round\" opacity=\"0.55\"/>",
            o.as_str(),
            outcome_colour(o)
        );
    }
    // Quantile lines over ok operations.
    let bucket_of = |t: u64| {
        (((t.saturating_sub(x.t0)) as f64 / (x.t1 - x.t0) as f64 * QUANTILE_BUCKETS as f64)
            as usize)
            .min(QUANTILE_BUCKETS - 1)
    };
    let mut buckets: Vec<Vec<u64>> = vec![Vec::new(); QUANTILE_BUCKETS];
    for &(t, l, o) in pts {
        if o == OpType::Ok {
            buckets[bucket_of(t)].push(l);
        }
    }
    for b in &mut buckets {
        b.sort_unstable();
    }
    for (q, colour, dash) in [(0.5, "#000", ""), (0.95, "#1565c0", "5 3"), (0.99, "#6a1b9a", "2 2")]
    {
        let mut d = String::new();
        let mut pen_down = false;
        for (i, b) in buckets.iter().enumerate() {
            if b.is_empty() {
                pen_down = false;
                continue;
            }
            let t =
                x.t0 + ((i as f64 + 0.5) / QUANTILE_BUCKETS as f64 * (x.t1 - x.t0) as f64) as u64;
            let _ = write!(
                d,
                "{}{:.1} {:.1}",
                if pen_down { "L" } else { "M" },
                x.x(t),
                y(quantile(b, q))
            );
            pen_down = true;
        }
        if !d.is_empty() {
            let _ = write!(
                out,
                "<path class=\"quantile\" d=\"{d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" stroke-dasharray=\"{dash}\"><title>p{}</title></path>",
                (q * 100.0) as u32
            );
        }
    }
    let _ = write!(
        out,
        "<g font-size=\"10\"><text x=\"{}\" y=\"14\" text-anchor=\"end\">\
         <tspan fill=\"#2e7d32\">● ok</tspan> <tspan fill=\"#c62828\">● fail</tspan> \
         <tspan fill=\"#ef6c00\">● info</tspan> — p50 <tspan fill=\"#1565c0\">p95</tspan> \
         <tspan fill=\"#6a1b9a\">p99</tspan> (ok ops)</text></g></svg>",
        W - MR
    );
    out
}

/// The throughput section: completions per second per function and outcome.
pub fn throughput(iv: &Intervals) -> String {
    let x = XAxis::of(iv);
    let h = 260.0;
    let (top, bottom) = (MT, h - MB);
    let bucket_len = (x.t1 - x.t0) as f64 / RATE_BUCKETS as f64;
    let per_unit = match iv.clock {
        Clock::Nanos => 1e9 / bucket_len,
        Clock::Logical => 1.0,
    };
    // Series keyed by (function, outcome code): counts per bucket, by completion time.
    let mut series: BTreeMap<(u16, u8), Vec<u64>> = BTreeMap::new();
    for it in &iv.items {
        let Some(end) = it.end else { continue };
        let code = match it.outcome {
            OpType::Ok => 0,
            OpType::Fail => 1,
            _ => 2,
        };
        let b = (((end.saturating_sub(x.t0)) as f64 / bucket_len) as usize).min(RATE_BUCKETS - 1);
        series.entry((it.f, code)).or_insert_with(|| vec![0; RATE_BUCKETS])[b] += 1;
    }
    let max_rate =
        series.values().flat_map(|v| v.iter()).copied().max().unwrap_or(0) as f64 * per_unit;
    let mut out = String::new();
    svg_open(&mut out, h, "throughput", "plot throughput");
    frame(&mut out, iv, &x, h);
    let unit = match iv.clock {
        Clock::Nanos => "ops/s",
        Clock::Logical => "ops per bucket",
    };
    let _ = write!(
        out,
        "<text x=\"{ML}\" y=\"14\" font-size=\"12\" font-weight=\"600\">throughput ({unit}) by function and outcome</text>"
    );
    let ymax = max_rate.max(1.0);
    for v in ticks(ymax, 5) {
        y_gridline(&mut out, bottom - v / ymax * (bottom - top), v);
    }
    let mut legend = String::from("<p class=\"legend\">");
    for ((f, code), counts) in &series {
        let colour = FUNCTION_COLOURS[*f as usize % FUNCTION_COLOURS.len()];
        let dash = ["", "6 3", "2 2"][*code as usize];
        let outcome = ["ok", "fail", "info"][*code as usize];
        let mut d = String::new();
        for (i, c) in counts.iter().enumerate() {
            let t = x.t0 + ((i as f64 + 0.5) * bucket_len) as u64;
            let py = bottom - (*c as f64 * per_unit) / ymax * (bottom - top);
            let _ = write!(d, "{}{:.1} {py:.1}", if i == 0 { "M" } else { "L" }, x.x(t));
        }
        let name = &iv.functions[*f as usize];
        let _ = write!(
            out,
            "<path class=\"rate\" d=\"{d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.4\" stroke-dasharray=\"{dash}\"><title>{} {outcome}</title></path>",
            escape(name)
        );
        let _ = write!(
            legend,
            "<span class=\"line-swatch\" style=\"border-top:2px {} {colour}\"></span>{} {outcome} ",
            ["solid", "dashed", "dotted"][*code as usize],
            escape(name)
        );
    }
    legend.push_str("</p>");
    out.push_str("</svg>");
    format!("{}{out}{legend}", fault_legend(iv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_numbers() {
        assert_eq!(ticks(10.0, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(0.9, 3), vec![0.0, 0.5]);
        assert_eq!(ticks(0.0, 3), vec![0.0]);
        assert_eq!(fmt_num(0.25), "0.25");
        assert_eq!(fmt_num(1500.0), "1500");
    }
}
