#!/usr/bin/env bash
# A sharded sweep through GNU parallel, added up by `popsim merge`.
#
#   deploy/sweep-parallel.sh SHARDS SCENARIO --seeds A..B [other sweep flags]
#
# Runs `popsim sweep … --shard I/SHARDS --format json` for I = 1..SHARDS as parallel jobs
# and pipes every shard's JSON lines into `popsim merge`, which prints what the unsharded
# sweep prints and exits as it would (0 nothing failed, 1 a seed failed, 2 bad input or a
# missing or overlapping shard).
#
# Environment:
#   POPSIM         the popsim binary (default: popsim on PATH); on remote hosts it must
#                  exist at the same path.
#   PARALLEL_OPTS  options for parallel (default: --jobs 2). Several hosts, one shard at a
#                  time each, every core of a host used by the sweep's own --jobs:
#                  PARALLEL_OPTS="--sshlogin 1/host1,1/host2,1/host3"
#   MERGE_OPTS     options for merge, e.g. --no-record or --regressions DIR.
set -u

if [ $# -lt 2 ]; then
  echo "usage: $0 SHARDS SCENARIO --seeds A..B [sweep flags]" >&2
  exit 2
fi
shards=$1
shift
popsim=${POPSIM:-popsim}
sweep=$(printf '%q ' "$@")

# A shard exits 1 when one of its seeds fails; that is a result, not an error, so
# parallel's exit status is not used: merge checks that every shard arrived whole.
# shellcheck disable=SC2086
parallel --will-cite ${PARALLEL_OPTS:---jobs 2} \
  "$popsim sweep $sweep --shard {}/$shards --format json" ::: $(seq 1 "$shards") \
  | "$popsim" merge ${MERGE_OPTS:-}
exit "${PIPESTATUS[1]}"
