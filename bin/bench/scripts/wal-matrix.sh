#!/usr/bin/env bash
# Runs the `wal` benchmark matrix and appends one JSON line per run to a results file.
#
# Usage: bin/bench/scripts/wal-matrix.sh [BASE_DIR] [RESULTS_FILE]
#   BASE_DIR      where each run gets a fresh temp dir (default /tmp); pick the disk you measure
#   RESULTS_FILE  JSON lines are appended here (default wal-results-<UTC time>.jsonl)
#
# Environment overrides (defaults = the matrix):
#   RECORDS=1000000  SIZE=256  BATCHES="1 64 1024"  SYNCS="always never"  REPS=5
#   IMPLS="mempulse mempulse-seq raft-engine okaywal"
#   SYNCED_BATCH1_RECORDS=20000  records for (--sync always, --batch 1): 1M fsyncs would take hours
#   PREALLOCATES="default"       preallocation modes of the mempulse and mempulse-seq runs, e.g.
#                                "zero-fill fallocate recycle" (recycle only differs from fallocate
#                                once segments are purged, which this benchmark never does)
#                                ("default" = mempulse's own default; peers always run their defaults)
#   BIN=target/release/mempulse-bench
#
# Runs are interleaved (rep > batch > sync > impl > preallocate) so that drift of the machine
# hits every implementation alike, and each starts after a `sync` (no earlier run's dirty pages); each line gets "rep" so ratios can be taken within one rep.
# Summarize with: python3 bin/bench/scripts/wal-summary.py RESULTS_FILE
set -euo pipefail

base=${1:-/tmp}
results=${2:-wal-results-$(date -u +%Y%m%dT%H%M%SZ).jsonl}
records=${RECORDS:-1000000}
size=${SIZE:-256}
batches=${BATCHES:-"1 64 1024"}
syncs=${SYNCS:-"always never"}
reps=${REPS:-5}
impls=${IMPLS:-"mempulse mempulse-seq raft-engine okaywal"}
synced_batch1_records=${SYNCED_BATCH1_RECORDS:-20000}
preallocates=${PREALLOCATES:-default}
bin=${BIN:-target/release/mempulse-bench}

if [[ ! -x "$bin" ]]; then
  echo "no binary at $bin; build it first: cargo build --release -p mempulse-bench" >&2
  exit 1
fi
mkdir -p "$base"
echo "results: $results" >&2
if [[ " $batches " == *" 1 "* && " $syncs " == *" always "* && "$synced_batch1_records" != "$records" ]]; then
  echo "note: --sync always --batch 1 runs use $synced_batch1_records records, not $records (one fsync per record)" >&2
fi

run_one() { # rep impl batch sync n [preallocate]
  local rep=$1 impl=$2 batch=$3 sync=$4 n=$5 pre=${6:-}
  local dir line status
  dir=$(mktemp -d "$base/mempulse-bench-wal.XXXXXX")
  local args=(wal --impl "$impl" --dir "$dir/log" --records "$n" --size "$size" --batch "$batch" --sync "$sync")
  if [[ -n "$pre" ]]; then args+=(--preallocate "$pre"); fi
  # Flush what earlier runs left dirty, so their writeback does not share this run's disk.
  sync
  set +e
  line=$("$bin" "${args[@]}")
  status=$?
  set -e
  rm -rf "$dir"
  if [[ $status -ne 0 && $status -ne 2 ]]; then
    echo "run failed (exit $status): $bin ${args[*]}" >&2
    return 1
  fi
  # Tag the line with its repetition (a JSON object always starts with '{').
  echo "{\"rep\":$rep,${line#\{}" >>"$results"
  echo "rep $rep $impl${pre:+[$pre]} batch=$batch sync=$sync records=$n: $line" >&2
}

for rep in $(seq 1 "$reps"); do
  for batch in $batches; do
    for sync in $syncs; do
      n=$records
      if [[ $batch == 1 && $sync == always ]]; then n=$synced_batch1_records; fi
      for impl in $impls; do
        if [[ $impl == mempulse* ]]; then
          for pre in $preallocates; do
            if [[ $pre == default ]]; then pre=""; fi
            run_one "$rep" "$impl" "$batch" "$sync" "$n" "$pre"
          done
        else
          run_one "$rep" "$impl" "$batch" "$sync" "$n"
        fi
      done
    done
  done
done
echo "done: $results" >&2
