//! Fuzzes the Jepsen EDN reader with arbitrary bytes, through the path `read_path` takes,
//! checks its fast reader against the general one, and the linearizability checker's
//! text path against reading and checking the history.
#![no_main]

use checkers::formats::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    faultline_fuzz::check(bytes, Some(Format::Edn));
    faultline_fuzz::check_edn_readers_agree(bytes);
    faultline_fuzz::check_text_path_agrees(bytes);
});
