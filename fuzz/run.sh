#!/usr/bin/env bash
# Fuzz the ER7 parser for a bounded time and fail on any crash or panic.
#   fuzz/run.sh [SECONDS]        (default 60; FUZZ_SANITIZER=address for AddressSanitizer)
# Seeds: hl7/samples and ../shared/conformance/hl7v2/**/*.hl7, copied into fuzz/corpus/ (git-ignored)
# at each run. cargo-fuzz needs nightly's -Z flags: RUSTC_BOOTSTRAP=1 lets stable accept them.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
corpus=corpus/er7_parse
mkdir -p "$corpus"
cp ../hl7/samples/*.hl7 "$corpus"/
if [ -d ../../shared/conformance/hl7v2 ]; then
  find ../../shared/conformance/hl7v2 -name '*.hl7' -exec cp {} "$corpus"/ \;
fi
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz run er7_parse --sanitizer "${FUZZ_SANITIZER:-none}" "$corpus" -- \
  -max_total_time="$seconds" -print_final_stats=1; then
  # The input that broke it, to paste into a regression test in src/hl7/er7.rs.
  for f in artifacts/er7_parse/*; do
    [ -f "$f" ] && echo "crash input $f (base64): $(base64 -w0 "$f")"
  done
  exit 1
fi
