#!/usr/bin/env bash
# The project's whole test suite: formatting, lints (warnings are errors) and every test.
# This is the README's test command and what .ci/run executes.
#
# One release build serves every test, the planted-bug ones included: the build has the
# `planted-bugs` feature, which compiles the deliberate bugs in, each switched off unless
# a test (or `--planted-bug`, `--plant`) names it. Building once matters on CI's 2 cores:
# separate builds per feature set, and a `cargo run` whose dependency features differ
# from the test build's, each rebuilt the whole workspace (about 5 of 21 minutes). The
# first clippy pass lints the production build, without the feature.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup component add rustfmt clippy >/dev/null 2>&1 || true
features=(--features dledger-perf/planted-bugs)
target_dir="${CARGO_TARGET_DIR:-target}"

echo "== rustfmt"
cargo fmt --all --check
echo "== clippy (the production build, then with the planted bugs compiled in)"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy --workspace --all-targets --locked "${features[@]}" -- -D warnings
echo "== tests (unit, property, simulator, planted bugs, disk, transport, cluster, chaos checker)"
cargo test --workspace --release --locked "${features[@]}"
echo "== chaos: 60 s against a real 3-node cluster, fixed seed (the last line must be clean)"
# The binary the tests just built and used (no rebuild; no bug is named, so none is on).
"$target_dir/release/dledger-perf" chaos --seconds 60 --seed 7
