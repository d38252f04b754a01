#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: `fuzz/run.sh [SECONDS_PER_TARGET]` (default 60).
# Needs cargo-fuzz (`cargo install cargo-fuzz`). cargo-fuzz wants a nightly compiler for
# its sanitizer flags; on a stable toolchain RUSTC_BOOTSTRAP=1 unlocks them.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
export RUSTC_BOOTSTRAP=1
for target in box_line message_json seal_open query request_head hook_env; do
    echo "==> fuzzing $target for ${seconds}s"
    cargo fuzz run "$target" -- -max_total_time="$seconds" -max_len=70000 -rss_limit_mb=2048
done
echo "==> no crash in any target"
