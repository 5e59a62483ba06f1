#!/bin/bash
# Measures how many trivial jobs/s one dropq host drives through the local
# single-node Slurm cluster, and where the CPU goes per job: the daemon's own
# (utime + stime from /proc), its srun clients (its reaped children),
# slurmctld, and slurmd with the slurmstepds it reaped.
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
# CPU in clock ticks (utime+stime, and cutime+cstime of reaped children) of
# a pid, from /proc/PID/stat.
ticks() { awk '{print $14+$15, $16+$17}' "/proc/$1/stat"; }
run=$(cat "$dir/cluster/tmpdir")/run  # cluster.sh keeps its state in a short /tmp path
ctld=$(cat "$run/slurmctld.pid"); slurmd=$(cat "$run/slurmd.pid")
# Busy ticks of the whole machine (all CPUs): what nobody above accounts for
# (slurmstepd daemonizes away from slurmd, munged, the kernel) is the rest.
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
read -r ctld0 _ < <(ticks "$ctld"); read -r d0 dc0 < <(ticks "$slurmd"); all0=$(busy)
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
read -r cpu srun < <(ticks "$pid")
read -r ctld1 _ < <(ticks "$ctld"); read -r d1 dc1 < <(ticks "$slurmd"); all1=$(busy)
kill -TERM $pid; wait $pid || true
failed=$(sqlite3 "$dir/var/store/dropq.db" "SELECT count(*) FROM jobs WHERE state='failed'")
python3 - "$start" "$end" "$hz" "$n" "$slots" "$failed" "$cpu" "$srun" "$((ctld1 - ctld0))" \
  "$((d1 - d0 + dc1 - dc0))" "$((all1 - all0))" "$(nproc)" <<'PY'
import sys
s, e, hz, n, slots, failed, cpu, srun, ctld, slurmd, busy, cpus = map(float, sys.argv[1:])
wall = e - s
ms = lambda t: f"{t / hz * 1000 / n:.2f}"
print(f"{int(n)} jobs, {int(slots)} slots: {wall:.1f} s, {n / wall:.1f} jobs/s, failed {int(failed)}; "
      f"CPU ms/job: dropq {ms(cpu)}, its srun clients {ms(srun)}, slurmctld {ms(ctld)}, "
      f"slurmd + reaped {ms(slurmd)}, the rest {ms(busy - cpu - srun - ctld - slurmd)}; "
      f"machine busy {busy / hz / wall / cpus * 100:.0f} % of {int(cpus)} CPUs")
PY
