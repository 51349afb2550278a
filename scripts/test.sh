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
echo "== tests"
cargo test --workspace --release --locked
echo "== planted bugs (the simulator must catch each)"
cargo test -p dledger --release --locked --features planted-bugs --test planted
