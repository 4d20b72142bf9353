//! `clawfirst`: the ClawFirst server and operator command line.
//!
//! Exit codes: 0 success; 1 failure (the error chain is printed on standard error); 2 invalid
//! command-line arguments.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    clawfirst_server::cli::main()
}
