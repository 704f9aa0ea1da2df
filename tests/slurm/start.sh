#!/usr/bin/env bash
# Start a real single-node SLURM (munged + slurmctld + slurmd, one fake GPU) for tests.
#
#   tests/slurm/start.sh <scratch_dir>        # then: export SLURM_CONF=<scratch_dir>/etc/slurm.conf
#   tests/slurm/stop.sh  <scratch_dir>
#
# What it touches outside <scratch_dir>:
#   * apt: slurmctld slurmd slurm-client munge, installed only when missing (apt-get update first);
#   * /run/munge/lg-<hash>/: this cluster's own munged (socket, pid, log); munged runs as the `munge`
#     user, which cannot reach pytest's 0700 temporary folders;
#   * /etc/slurm/slurm.conf: a SYMLINK to <scratch_dir>/etc/slurm.conf, created only where no such file
#     exists (or where it is a symlink left by an earlier test cluster).  Reason: inside a job,
#     snakemake-executor-plugin-slurm-jobstep runs the rule through `srun` with every SLURM_* variable
#     (SLURM_CONF included) removed from the environment, so that srun only finds the cluster through the
#     default path, as on a real cluster.  A regular /etc/slurm/slurm.conf (a real SLURM on this machine) is
#     never replaced: start.sh refuses instead.  stop.sh removes the symlink if it is still ours.
# Hence one test cluster per machine at a time.  If the symlink belongs to another cluster that is still
# running, start.sh refuses, unless LATENTGEN_SLURM_TAKEOVER=1 (set by the pytest fixture after it has
# taken the machine-wide cluster lock, so such a cluster can only be a leftover of a killed session): then
# it stops that cluster first.
#
# Everything else (configuration, state, spool, pid and log files) lives in <scratch_dir>.
# Idempotent: if this scratch dir's daemons are up and the node answers, they are kept as they are; a
# half-started cluster is stopped and started afresh.  The last lines printed (and <scratch_dir>/env.sh)
# are the environment to use; exporting SLURM_CONF is still the explicit, recommended way for sbatch,
# squeue, scancel and sinfo (jobs inherit it: sbatch --export=ALL).
set -euo pipefail

die() { echo "start.sh: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: $0 <scratch_dir>"
[ "$(id -u)" -eq 0 ] || die "must run as root (daemons run as SlurmUser=root, munged as munge)"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$1"
S=$(cd "$1" && pwd -P)
ETC=$S/etc RUN=$S/run LOG=$S/log
CONF=$ETC/slurm.conf
SYS_CONF=/etc/slurm/slurm.conf
# Seconds a finished job stays visible to `squeue --states=all`.  With `--slurm-status-command squeue`
# the executor must see every job finish within this time: it must be >= 3x its
# --slurm-init-seconds-before-status-checks (else the plugin falls back to sacct, which fails without
# accounting storage) and above its longest gap between status checks (grows by 10 s up to 180 s).
MIN_JOB_AGE=${LATENTGEN_SLURM_MIN_JOB_AGE:-300}

# One start at a time on this machine (dpkg lock, ports, /etc/slurm/slurm.conf).  fd 9 is closed for the
# daemons below, else they would hold the lock forever.
exec 9>/tmp/latentgen-slurm-start.lock
flock -w 900 9 || die "timed out waiting for /tmp/latentgen-slurm-start.lock"

# ---------------------------------------------------------------- packages (only if missing)
need=()
for pair in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || die "missing ${need[*]} and no apt-get to install them"
    echo "start.sh: installing slurmctld slurmd slurm-client munge (missing: ${need[*]})" >&2
    { export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq &&
      apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 \
          slurmctld slurmd slurm-client munge; } >"$S/apt.log" 2>&1 \
        || { tail -20 "$S/apt.log" >&2; die "apt-get install failed (log: $S/apt.log)"; }
fi
if [ ! -s /etc/munge/munge.key ]; then
    runuser -u munge -- mungekey --create || die "cannot create /etc/munge/munge.key"
fi

# ---------------------------------------------------------------- helpers
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
print_env() {
    echo "# environment for the test cluster in $S"
    cat "$S/env.sh"
}
# The scratch dir of the test cluster whose slurm.conf the system path links to ('' if none).
sys_conf_owner() {
    local target
    [ -L "$SYS_CONF" ] || return 0
    target=$(readlink "$SYS_CONF")
    case "$target" in */etc/slurm.conf) ;; *) return 0 ;; esac
    [ -e "$(dirname "$target")/latentgen-test-cluster" ] || return 0
    dirname "$(dirname "$target")"
}

HASH=$(printf %s "$S" | md5sum | cut -c1-10)
MDIR=/run/munge/lg-$HASH
MSOCK=$MDIR/munge.socket

# ---------------------------------------------------------------- already running? keep it
if alive "$MDIR/munged.pid" && alive "$RUN/slurmctld.pid" && alive "$RUN/slurmd.pid" \
    && [ "$(sys_conf_owner)" = "$S" ] \
    && SLURM_CONF=$CONF timeout 10 sinfo -h -o %T 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; then
    echo "start.sh: cluster in $S already running" >&2
    print_env
    exit 0
fi

# ---------------------------------------------------------------- /etc/slurm/slurm.conf: ours to take?
if [ -e "$SYS_CONF" ] || [ -L "$SYS_CONF" ]; then
    owner=$(sys_conf_owner)
    if [ -z "$owner" ]; then
        die "$SYS_CONF exists and is not a test cluster's symlink (a real SLURM here?): refusing to" \
            "replace it; jobs' srun would read it (the jobstep plugin strips SLURM_CONF)"
    fi
    if [ "$owner" != "$S" ] && alive "$owner/run/slurmctld.pid"; then
        if [ "${LATENTGEN_SLURM_TAKEOVER:-0}" = 1 ]; then
            echo "start.sh: stopping leftover test cluster $owner" >&2
            "$HERE/stop.sh" "$owner" 9>&- || true
        else
            die "another test cluster is running from $owner (stop it: $HERE/stop.sh $owner)"
        fi
    fi
fi

# Half-started (or stale after a crash): clean up and start afresh.
"$HERE/stop.sh" "$S" 9>&- >/dev/null 2>&1 || true
mkdir -p "$ETC" "$RUN" "$LOG" "$S/state" "$S/spool/slurmd"
touch "$ETC/latentgen-test-cluster"

# ---------------------------------------------------------------- ports
# The first free pair from SLURM's defaults 6817/6818 (a leftover cluster of a killed session may hold them).
CTLD_PORT=6817
while port_busy "$CTLD_PORT" || port_busy $((CTLD_PORT + 1)); do
    CTLD_PORT=$((CTLD_PORT + 2))
    [ "$CTLD_PORT" -lt 7817 ] || die "no free port pair in 6817-7817"
done
SLURMD_PORT=$((CTLD_PORT + 1))

# ---------------------------------------------------------------- configuration
# The node as slurmd sees this machine, renamed to localhost (the host name is not localhost).
NODE=$(slurmd -C | head -1 | sed -E 's/^NodeName=[^ ]+ //')
CPUS=$(sed -nE 's/.*CPUs=([0-9]+).*/\1/p' <<<"$NODE")
MEM=$(sed -nE 's/.*RealMemory=([0-9]+).*/\1/p' <<<"$NODE")
DEF_MEM=$(( MEM / (CPUS > 0 ? CPUS : 1) / 2 ))
[ "$DEF_MEM" -ge 100 ] || DEF_MEM=100

cat >"$CONF" <<EOF
# Generated by tests/slurm/start.sh: a throw-away single-node test cluster.
ClusterName=latentgen-test
SlurmctldHost=localhost
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MSOCK
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without it one job would take the whole node's memory.
DefMemPerCPU=$DEF_MEM
SchedulerType=sched/backfill
ReturnToService=2
# Finished jobs stay visible to squeue this long (see MIN_JOB_AGE in start.sh).
MinJobAge=$MIN_JOB_AGE
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# One fake GPU, so that --gpus jobs are scheduled (one at a time) as on a GPU node.
GresTypes=gpu
NodeName=localhost $NODE Gres=gpu:fake:1 State=UNKNOWN
PartitionName=gpu Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF

# gres.conf is read from the folder of the slurm.conf that slurmd reads (SLURM_CONF below).
cat >"$ETC/gres.conf" <<EOF
AutoDetect=off
NodeName=localhost Name=gpu Type=fake File=/dev/null Count=1
EOF

cat >"$S/env.sh" <<EOF
export SLURM_CONF=$CONF
EOF

mkdir -p "$(dirname "$SYS_CONF")"
ln -sfn "$CONF" "$SYS_CONF"

# ---------------------------------------------------------------- daemons
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0755 "$MDIR"
runuser -u munge -- munged --socket="$MSOCK" --pid-file="$MDIR/munged.pid" \
    --log-file="$MDIR/munged.log" --seed-file="$MDIR/munged.seed" 9>&- \
    || die "munged failed: $(tail -5 "$MDIR/munged.log" 2>/dev/null)"
for _ in $(seq 50); do [ -S "$MSOCK" ] && break; sleep 0.1; done
munge -S "$MSOCK" -n </dev/null | unmunge -S "$MSOCK" >/dev/null || die "munge round trip failed"

export SLURM_CONF=$CONF
# -c: ignore any state saved by a previous life of this scratch dir.
slurmctld -c 9>&- || die "slurmctld failed: $(tail -20 "$LOG/slurmctld.log")"
slurmd -N localhost 9>&- || die "slurmd failed: $(tail -20 "$LOG/slurmd.log")"

for i in $(seq 150); do
    state=$(timeout 10 sinfo -h -o %T 2>/dev/null || true)
    case "$state" in idle*) break ;; esac
    case "$state" in down* | drain*) scontrol update NodeName=localhost State=RESUME 2>/dev/null || true ;; esac
    [ "$i" -lt 150 ] || die "node not idle after 30 s (state: '$state'); logs in $LOG"
    sleep 0.2
done
echo "start.sh: cluster up in $S (slurmctld :$CTLD_PORT, slurmd :$SLURMD_PORT; $SYS_CONF -> $CONF)" >&2
print_env
