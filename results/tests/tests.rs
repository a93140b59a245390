//! Integration tests of faultline-results, one module per area.

/// Builders shared by the tests and the benchmark.
mod common;

/// The store: run directories, `results.json` and its compatibility.
mod store;

/// Properties of pairing, fault periods and the packed timeline, on random histories.
mod intervals;

/// Reports for valid, invalid and unknown runs of each checker.
mod reports;

/// `faultline serve` over a store, through real HTTP on loopback.
mod serve;

/// Headless Chromium opens the report and the index: no script errors.
mod browser;

/// The small DevTools protocol client the browser tests drive Chromium with.
mod cdp;
