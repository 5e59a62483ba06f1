#!/bin/bash
# Measures how many trivial jobs/s one dropq host drives through the local
# single-node Slurm cluster, and the daemon's own CPU per job (its utime +
# stime from /proc, children excluded; the srun clients are children).
#   bench/slurm_scale.sh BUILD JOBS SLOTS     (as root; docs/SCALING.md)
# Starts its own test cluster (tests/slurm/cluster.sh): Slurm's ports are
# fixed, so not while `make test` runs its slurm tests.
set -eu
build=$(cd "$1" && pwd); n=$2; slots=$3
src=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d /tmp/dropq-scale.XXXXXX)
"$src/tests/slurm/cluster.sh" start "$dir/cluster" >/dev/null
export SLURM_CONF="$dir/cluster/slurm.conf"
trap '"$src/tests/slurm/cluster.sh" stop "$dir/cluster" >/dev/null 2>&1 || true' EXIT
cat > "$dir/dropq.yaml" <<YAML
root: $dir/var
runtime: slurm
agent: [$build/test-agent]
slurm: {shared_root: $dir, inner: bare}
max_concurrent: $slots
max_concurrent_per_group: $slots
log_level: warn
groups:
  - {folder: main, main: true}
YAML
mkdir -p "$dir/var/data/ipc/main/tasks"
for i in $(seq 1 "$n"); do echo "{\"prompt\":\"echo $i\"}" > "$dir/var/data/ipc/main/tasks/j$i.json"; done
start=$(date +%s.%N)
"$build/dropq" run --config "$dir/dropq.yaml" 2>"$dir/daemon.log" &
pid=$!
hz=$(getconf CLK_TCK)
while :; do
  done_n=$(sqlite3 "$dir/var/store/dropq.db" "SELECT count(*) FROM jobs WHERE state IN ('succeeded','failed')" 2>/dev/null || echo 0)
  [ "$done_n" -ge "$n" ] && break
  sleep 0.2
done
end=$(date +%s.%N)
cpu=$(awk '{print $14+$15}' /proc/$pid/stat)
kill -TERM $pid; wait $pid || true
failed=$(sqlite3 "$dir/var/store/dropq.db" "SELECT count(*) FROM jobs WHERE state='failed'")
python3 - "$start" "$end" "$cpu" "$hz" "$n" "$slots" "$failed" <<'PY'
import sys
s,e,cpu,hz,n,slots,failed=map(float,sys.argv[1:])
wall=e-s
print(f"{int(n)} jobs, {int(slots)} slots: {wall:.1f} s, {n/wall:.1f} jobs/s, daemon CPU {cpu/hz*1000/n:.2f} ms/job, failed {int(failed)}")
PY
