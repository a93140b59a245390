//! Writes the seed corpus of the history-reader fuzz targets (`fuzz/`): every
//! small history the repository holds, as it is and rewritten in every
//! format faultline reads, one folder per target. The corpus is built when
//! fuzzing starts, so no copy of the histories is committed.
//!
//! ```text
//! cargo run -p faultline-checkers --example fuzz_seeds -- OUT_DIR [MORE_HISTORY_DIRS...]
//! ```
//!
//! The histories are `checkers/tests/golden/**` and `checkers/tests/data/**`,
//! and a few small generated register, list-append and rw-register
//! histories for the `edn` target;
//! `fuzz/smoke.sh` adds `$FAULTLINE_BENCHDATA/porcupine` when it is set.
//! Files above [`MAX_SEED`] bytes are left out: the fuzzer mutates small
//! inputs faster, and the large ones add no syntax the small ones lack.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use checkers::elle::Workload;
use checkers::elle::generate::{GenOptions, Isolation, generate};
use checkers::formats::{self, Format};
use checkers::linear::ModelName;
use checkers::synth::{self, SynthSpec};

/// Largest history file used as a seed, in bytes.
const MAX_SEED: u64 = 16 * 1024;

/// The fuzz target that reads `format`, as named in `fuzz/Cargo.toml`.
fn target(format: Format) -> String {
    format.name().replace('-', "_")
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, out)?;
        } else if !path.extension().is_some_and(|e| e == "expected" || e == "md")
            && path.metadata()?.len() <= MAX_SEED
        {
            out.push(path);
        }
    }
    Ok(())
}

fn run(out: &Path, extra: &[PathBuf]) -> std::io::Result<usize> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![crate_dir.join("tests/golden"), crate_dir.join("tests/data")];
    dirs.extend_from_slice(extra);
    let mut files = Vec::new();
    for dir in &dirs {
        collect(dir, &mut files)?;
    }
    let mut targets: Vec<String> = Format::ALL.iter().map(|&f| target(f)).collect();
    targets.push("auto".into());
    for t in &targets {
        std::fs::create_dir_all(out.join(t))?;
    }
    let mut written = 0;
    let mut write = |t: &str, name: &str, bytes: &[u8]| -> std::io::Result<()> {
        written += 1;
        std::fs::write(out.join(t).join(name), bytes)
    };
    for path in &files {
        let bytes = std::fs::read(path)?;
        // A name that says where the seed came from, unique across folders.
        let name: String = path
            .strip_prefix(crate_dir)
            .unwrap_or(path)
            .to_string_lossy()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
            .collect();
        write("auto", &name, &bytes)?;
        let text = String::from_utf8_lossy(&bytes);
        if let Some(format) = formats::detect(&text) {
            write(&target(format), &name, &bytes)?;
        }
        // Every history that reads is a seed for every reader.
        if let Ok(history) = formats::parse_bytes(&bytes, &name, None) {
            for format in Format::ALL {
                let converted = formats::write(&history, format);
                write(
                    &target(format),
                    &format!("{name}.as.{}", format.name()),
                    converted.as_bytes(),
                )?;
            }
        }
    }
    // Small register histories in the one shape the linearizability
    // checker decides straight from its text (`formats/register_lines.rs`):
    // few of the repository's histories have it (most name nodes or a
    // nemesis), and mutating these reaches the corners of pairing.
    for (seed, cas, crash, small) in
        [(1, true, 0.1, false), (2, true, 0.0, true), (3, false, 0.2, true)]
    {
        let model = if cas { ModelName::CasRegister } else { ModelName::Register };
        let mut spec = SynthSpec::new(model, seed);
        spec.ops = 12;
        spec.processes = 3;
        spec.keys = 2;
        spec.crash_rate = crash;
        spec.value_range = small.then_some(4);
        let text = formats::write(&synth::generate(&spec), Format::Edn);
        write("edn", &format!("synth-register-{seed}.edn"), text.as_bytes())?;
        if let Some(stale) = synth::stale_read(&synth::generate(&spec), u64::MAX) {
            let text = formats::write(&stale.history, Format::Edn);
            write("edn", &format!("synth-register-{seed}-stale.edn"), text.as_bytes())?;
        }
    }
    // Small list-append and rw-register histories in the one shape Elle's
    // checkers read straight from their text (`formats/txn_lines.rs`), with
    // aborted and indeterminate transactions and stale reads (invalid).
    for (seed, faults, snapshot, workload) in [
        (1, 0.0, false, Workload::ListAppend),
        (2, 0.2, false, Workload::ListAppend),
        (3, 0.2, true, Workload::ListAppend),
        (4, 0.2, false, Workload::RwRegister),
    ] {
        let options = GenOptions {
            txns: 8,
            processes: 3,
            active_keys: 2,
            max_writes_per_key: 4,
            isolation: if snapshot {
                Isolation::SnapshotIsolation
            } else {
                Isolation::Serializable
            },
            fail_rate: faults,
            info_rate: faults / 2.0,
            stale_read_rate: faults,
            seed,
            workload,
            ..GenOptions::default()
        };
        let text = formats::write(&generate(&options), Format::Edn);
        write("edn", &format!("synth-{}-{seed}.edn", workload.name()), text.as_bytes())?;
    }
    Ok(written)
}

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let Some((out, extra)) = args.split_first() else {
        eprintln!("usage: fuzz_seeds OUT_DIR [MORE_HISTORY_DIRS...]");
        return ExitCode::from(2);
    };
    match run(out, extra) {
        Ok(n) => {
            println!("fuzz_seeds: wrote {n} seeds into {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fuzz_seeds: {e}");
            ExitCode::FAILURE
        }
    }
}
