#!/bin/bash
# One process on both cores vs two single-core processes, for the distill step's `mix` group.
# Usage: GROUP=3 benchmarks/cores.sh   (pauses a running kdlib queue while it measures)
set -u
cd "$(dirname "$0")/.."
# every queue process: the supervisor and the training child it starts (stopping only the
# first pgrep match paused the supervisor and left the child training)
QPIDS=$(pgrep -f 'kdlib.experiments.queue' || true)
if [ -n "$QPIDS" ]; then echo "pausing queue pids" $QPIDS; kill -STOP $QPIDS; fi
trap '[ -n "$QPIDS" ] && kill -CONT $QPIDS' EXIT
B="env OPENBLAS_NUM_THREADS=1 JAX_PLATFORMS=cpu .venv/bin/python benchmarks/distill_step.py --only mix --steps-per-call 4 --calls 15 --group ${GROUP:-1}"
T=$(mktemp -d)
for round in 1 2; do
  echo "== round $round: one process, 2 cores"; $B 2>&1 | grep -E 'distill|device'
  echo "== round $round: one process, core 0 only"; taskset -c 0 $B 2>&1 | grep -E 'distill'
  echo "== round $round: two processes, one core each"
  taskset -c 0 $B > "$T/c0.log" 2>&1 & taskset -c 1 $B > "$T/c1.log" 2>&1; wait
  grep -h distill "$T/c0.log" "$T/c1.log"
done
