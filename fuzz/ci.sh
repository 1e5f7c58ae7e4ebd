#!/usr/bin/env bash
# CI's fuzz step (called by .ci/run after the tests): build every cargo-fuzz target,
# replay its committed corpus (fuzz/corpus/TARGET) and fuzz it briefly. Any crash,
# panic, timeout or OOM fails the step; libFuzzer prints the input and cargo-fuzz
# the command that reproduces it. Needs a nightly toolchain: without one it says
# so and skips. FUZZ_SECONDS sets the fuzzing time per target (default 10).
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-10}"
echo "== fuzz: cargo fmt --check (the fuzz package is outside the workspace)"
cargo fmt --manifest-path Cargo.toml --check
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "== fuzz: skipped: no nightly toolchain (cargo-fuzz needs nightly; see fuzz/README.md)"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "== fuzz: cargo install cargo-fuzz --locked"
  cargo +nightly install cargo-fuzz --locked --quiet
fi

# Unoptimized builds with debug assertions and overflow checks, no sanitizer (all our
# code is safe Rust; see the README): a cold dev build takes a fraction of the time of
# the release builds used for the long local runs, and 10 s of fuzzing needs no speed.
# The target folder lives outside the clone so later CI runs on this machine rebuild
# only swarmhub's own crates.
target_dir="${SWARMHUB_FUZZ_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/swarmhub-fuzz-target}"
flags=(--dev --sanitizer none --target-dir "$target_dir")
start=$SECONDS
echo "== fuzz: building targets"
if ! cargo +nightly fuzz build "${flags[@]}" >"${TMPDIR:-/tmp}/swarmhub-fuzz-build.log" 2>&1; then
  tail -n 60 "${TMPDIR:-/tmp}/swarmhub-fuzz-build.log"
  echo "== fuzz: building the targets FAILED"
  exit 1
fi
echo "== fuzz: built in $((SECONDS - start)) s"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in $(cargo +nightly fuzz list); do
  mkdir -p "$scratch/$target" "corpus/$target"
  t0=$SECONDS
  # New inputs go to the scratch folder (first), the committed seeds are only read.
  # -runs bounds the work when a target is fast; -max_total_time bounds the time.
  if ! cargo +nightly fuzz run "${flags[@]}" "$target" "$scratch/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -runs=2000000 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$scratch/$target.log" 2>&1; then
    grep -m 3 -A 2 'panicked at' "$scratch/$target.log" || true
    tail -n 40 "$scratch/$target.log"
    echo "== fuzz: target $target FAILED (input saved under fuzz/artifacts/$target/)"
    exit 1
  fi
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$scratch/$target.log" | grep -o '[0-9]*$' || echo '?')"
  cov="$(grep -o 'cov: [0-9]* ft: [0-9]*' "$scratch/$target.log" | tail -n 1 || true)"
  echo "== fuzz: $target ok: $runs runs, $cov, $((SECONDS - t0)) s"
done
echo "== fuzz: all targets ok in $((SECONDS - start)) s"
