//! Running one test of this binary in a child process of its own: for tests that need a
//! process to themselves (a SIGKILL target, a signal handler) now that all the tests
//! share one binary.

use std::process::Command;

/// A command that runs only the `#[ignore]`d test at `path` (e.g.
/// `disk_crash::crash_child`) of this test binary, with its output uncaptured. The child
/// test should do nothing unless an environment variable the parent sets is present, so
/// a plain `--ignored` run does not set it off.
pub fn child_test(path: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the path of this test binary"));
    command.args([
        "--exact",
        path,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    command
}
