#!/bin/bash
# A new user's first minutes, timed: a fresh clone of this repository with every cache empty
# (uv's and pip's downloads, the fit cache, numba's and PyTensor's compile caches: each a new
# empty folder), then `make demo`'s command and a second process of the same funnel shape
# (`demo`), or `make test` (`test`). Prints one line per run; take the median of several.
#
#   tests/benchmarks/cold.sh demo 3     # three cold demos, one after another
#   tests/benchmarks/cold.sh test 1
set -euo pipefail
what=${1:-demo}
runs=${2:-1}
repo=$(cd "$(dirname "$0")/../.." && pwd)
now() { date +%s.%N; }
for n in $(seq "$runs"); do
  work=$(mktemp -d)
  git clone -q "$repo" "$work/krsim"
  cd "$work/krsim"
  export UV_CACHE_DIR=$work/uv PIP_CACHE_DIR=$work/pip KRSIM_CACHE_DIR=$work/fits
  export NUMBA_CACHE_DIR=$work/numba PYTENSOR_FLAGS=base_compiledir=$work/pytensor
  # a user's machine keeps the bytecode of what Python imports (`make` unexports this too); set,
  # every process here would compile the stack's sources again (about 4.5 s each)
  unset PYTHONDONTWRITEBYTECODE
  if [ "$what" = test ]; then
    t0=$(now); rc=0; make test > "$work/test.log" 2>&1 || rc=$?; t1=$(now)
    echo "cold make test $n: exit $rc, $(echo "$t1 - $t0" | bc) s ($(tail -n 1 "$work/test.log")); load $(cut -d' ' -f1-3 /proc/loadavg)"
    grep -E "^NUTS fits|^compiled models|^fits sampled" "$work/test.log" | sed 's/^/  /' || true
    [ "$rc" = 0 ] || tail -n 40 "$work/test.log"
  else
    t0=$(now); make .venv/.installed-run > /dev/null 2>&1; t1=$(now)
    .venv/bin/krsim run --report scenarios/mandatory_account.yaml > /dev/null 2>&1; t2=$(now)
    .venv/bin/krsim run scenarios/mandatory_account.yaml --seed 7 > /dev/null 2>&1; t3=$(now)
    echo "cold demo $n: install $(echo "$t1 - $t0" | bc) s, run and report $(echo "$t2 - $t1" | bc) s, demo $(echo "$t2 - $t0" | bc) s; second process (another seed) $(echo "$t3 - $t2" | bc) s; load $(cut -d' ' -f1-3 /proc/loadavg)"
  fi
  cd "$repo"
  rm -rf "$work"
done
