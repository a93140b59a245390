//! Fuzzes format detection and then whichever reader it picks, as
//! `faultline check` reads a file given without `--format`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| faultline_fuzz::check(bytes, None));
