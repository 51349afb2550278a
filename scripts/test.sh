#!/usr/bin/env bash
# The project's whole test suite: formatting, lints (warnings are errors) and every test.
# This is the README's test command and what .ci/run executes.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "== rustfmt"
cargo fmt --all --check
echo "== clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p dledger --all-targets --locked --features planted-bugs -- -D warnings
cargo clippy -p dledger-perf --all-targets --locked --features planted-bugs -- -D warnings
echo "== tests"
cargo test --workspace --release --locked
echo "== planted bugs (the simulator must catch each)"
cargo test -p dledger --release --locked --features planted-bugs --test planted
echo "== chaos: 60 s against a real 3-node cluster, fixed seed (the last line must be clean)"
cargo run -p dledger-perf --release --locked -q -- chaos --seconds 60 --seed 7
echo "== chaos: the checker catches a leader that acknowledges without a quorum"
cargo test -p dledger-perf --release --locked --features planted-bugs --test chaos_planted
