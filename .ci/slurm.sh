#!/usr/bin/env bash
# A one-node Slurm cluster on this machine for the deploy tests (tests/deploy/test_slurm.py):
# Debian's slurm-wlm and munge, slurmctld and slurmd running as root, one partition `hpo`.
# Idempotent: installs what is missing, and does nothing more when `srun hostname` already
# answers. Needs root. Logs and state under $HPO_SLURM_DIR (default /var/lib/hpo-slurm).
#
#   bash .ci/slurm.sh            # install if needed, configure, start, wait for `srun hostname`
#   bash .ci/slurm.sh --stop     # stop slurmd and slurmctld (munged keeps running)
#
# The test cluster, not a production one: no accounting, no cgroups (proctrack/linuxproc follows
# the process tree, task/none binds nothing), KillWait 15 s so a cancelled job's SIGKILL comes
# soon, and at least 4 CPUs declared (SlurmdParameters=config_overrides) so three one-CPU
# array tasks run side by side on a 2-core machine.
set -euo pipefail

dir=${HPO_SLURM_DIR:-/var/lib/hpo-slurm}
conf=/etc/slurm/slurm.conf

log() { echo "slurm.sh: $*" >&2; }

stop() {
    local name
    for name in slurmd slurmctld; do
        if [[ -f $dir/$name.pid ]]; then
            kill "$(cat "$dir/$name.pid")" 2>/dev/null || true
            rm -f "$dir/$name.pid"
        fi
    done
}

answers() { timeout 20 srun --quiet --time=1 hostname >/dev/null 2>&1; }

need_root() {
    if [[ $(id -u) -ne 0 ]]; then
        log "needs root (slurmctld and slurmd run as root here)"
        exit 1
    fi
}

if [[ ${1:-} == --stop ]]; then
    need_root
    stop
    exit 0
fi

# Already up (as any user): nothing to do.
if command -v srun >/dev/null && [[ -f $conf ]] && grep -q '^# hpo test cluster' "$conf" &&
    answers; then
    exit 0
fi
need_root

# -- install -------------------------------------------------------------------------------------
missing=()
command -v slurmctld >/dev/null || missing+=(slurm-wlm)
command -v munged >/dev/null || missing+=(munge)
if [[ ${#missing[@]} -gt 0 ]]; then
    apt_log=$(mktemp)
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq &&
        apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$apt_log" 2>&1; then
        cat "$apt_log" >&2
        rm -f "$apt_log"
        log "installing ${missing[*]} failed"
        exit 1
    fi
    rm -f "$apt_log"
    log "installed ${missing[*]}"
fi

# -- munge ---------------------------------------------------------------------------------------
mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
chmod 0755 /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- munged
    for _ in $(seq 50); do
        munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.2
    done
fi

# -- slurm.conf ----------------------------------------------------------------------------------
stop
host=$(hostname -s)
detected=$(nproc)
cpus=$((detected > 4 ? detected : 4))
mkdir -p "$dir/ctld" "$dir/d" /etc/slurm
cat >"$conf" <<CONF
# hpo test cluster: written by .ci/slurm.sh, overwritten on every start.
ClusterName=hpo-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/ctld
SlurmdSpoolDir=$dir/d
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
# A cancelled or preempted job gets SIGTERM, then SIGKILL this many seconds later (30 by
# default): short, yet room for hpo to fail its trial on a loaded 2-core machine.
KillWait=15
# Finished jobs stay visible to scontrol/squeue for 5 minutes (no accounting database here).
MinJobAge=300
JobRequeue=1
SlurmdParameters=config_overrides
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=hpo Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

# -- start ---------------------------------------------------------------------------------------
# -c: forget jobs of an earlier start (their processes are gone).
slurmctld -c
slurmd -c
for _ in $(seq 60); do
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
    case $state in
    idle* | mixed* | allocated*) break ;;
    down* | drain* | fail*) scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
    esac
    sleep 0.5
done
if ! answers; then
    log "Slurm did not answer \`srun hostname\`; node state: ${state:-unknown}"
    tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
    exit 1
fi
log "one-node cluster up: partition hpo, node $host, $cpus CPUs (logs in $dir)"
