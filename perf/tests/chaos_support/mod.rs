//! Reading the last line of a `dledger-perf chaos` run.

/// The last non-empty line of `stdout`.
pub fn last_line(stdout: &str) -> String {
    stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string()
}

/// The value of `key=` in a summary line; fails the test when it is missing.
pub fn field(line: &str, key: &str) -> u64 {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in the summary line {line:?}"))
}
