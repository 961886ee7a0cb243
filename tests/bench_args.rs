//! What every benchmark's command line has in common.

/// Prints `usage` and exits when the command line asks for help (`-h` or `--help`); a benchmark
/// calls it before reading its flags, which would otherwise take `--help` for a flag without its
/// value.
pub fn exit_on_help(usage: &str) {
    if std::env::args()
        .skip(1)
        .any(|arg| arg == "-h" || arg == "--help")
    {
        println!("usage: {usage}");
        std::process::exit(0);
    }
}
