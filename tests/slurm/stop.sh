#!/usr/bin/env bash
# Stop the test cluster that tests/slurm/start.sh <scratch_dir> started.
#
#   tests/slurm/stop.sh <scratch_dir>
#
# Cancels its jobs, then ends slurmd, slurmctld and munged through their pid files (checking that each pid
# still is that daemon), and removes the /etc/slurm/slurm.conf symlink if it still points to this cluster.
# Touches nothing else; safe to call twice or on a cluster that never started.
set -uo pipefail

[ $# -eq 1 ] || { echo "usage: $0 <scratch_dir>" >&2; exit 2; }
[ -d "$1" ] || exit 0
S=$(cd "$1" && pwd -P)
RUN=$S/run
MDIR=/run/munge/lg-$(printf %s "$S" | md5sum | cut -c1-10)
export SLURM_CONF=$S/etc/slurm.conf

# pid from a pid file, only if that process is alive and is the named daemon.
daemon_pid() {
    local pid
    [ -s "$1" ] || return 1
    pid=$(cat "$1")
    [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$2" ] && echo "$pid"
}

stop_daemon() {  # pidfile name
    local pid
    pid=$(daemon_pid "$1" "$2") || { rm -f "$1"; return 0; }
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "stop.sh: $2 ($pid) ignored SIGTERM for 10 s; SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$1"
}

# Jobs first, while slurmctld and slurmd can still end them (their slurmstepd would outlive slurmd).
if daemon_pid "$RUN/slurmctld.pid" slurmctld >/dev/null && [ -f "$SLURM_CONF" ]; then
    if [ -n "$(timeout 10 squeue -h -o %i 2>/dev/null)" ]; then
        timeout 10 scancel --full --user=root 2>/dev/null
        for _ in $(seq 100); do
            [ -z "$(timeout 5 squeue -h -t PENDING,RUNNING,COMPLETING,SUSPENDED -o %i 2>/dev/null)" ] && break
            sleep 0.1
        done
    fi
fi

stop_daemon "$RUN/slurmd.pid" slurmd
stop_daemon "$RUN/slurmctld.pid" slurmctld
stop_daemon "$MDIR/munged.pid" munged
rm -rf "$MDIR"
if [ -L /etc/slurm/slurm.conf ] && [ "$(readlink /etc/slurm/slurm.conf)" = "$SLURM_CONF" ]; then
    rm -f /etc/slurm/slurm.conf
fi
echo "stop.sh: cluster in $S stopped" >&2
exit 0
