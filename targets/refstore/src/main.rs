//! The `refstore` binary: the command line of the library, nothing else.

fn main() -> std::process::ExitCode {
    refstore::main_from_args(std::env::args().skip(1).collect())
}
