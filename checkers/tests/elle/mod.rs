//! Tests of the Elle-style checkers: histories built by hand and by the
//! generator, sample files in Jepsen EDN and elle-cli JSON, golden
//! explanations, the model lattice and the HTML pages.

mod files;
mod golden;
mod injected;
mod lattice;
mod properties;
mod support;
