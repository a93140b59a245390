//! Fuzzes the Jepsen text log reader with arbitrary bytes, through the path `read_path` takes.
#![no_main]

use checkers::formats::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| faultline_fuzz::check(bytes, Some(Format::JepsenLog)));
