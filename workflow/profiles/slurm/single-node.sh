#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for trying the Slurm profile (and for CI, which runs
# the smoke profile through it). Debian's slurmctld, slurmd and slurm-client; no munge, no
# accounting. The node offers two job slots per core (declared CPUs, kept by config_overrides): a
# smoke job spends much of its life starting Snakemake and waiting for the next status poll.
# Idempotent: a cluster that already answers is left as it is, and an existing
# /etc/slurm/slurm.conf that this script did not write is never replaced. A controller of ours that
# no longer answers (the machine restarted, or a build was killed) starts again with no saved state,
# so jobs left over from a killed build never hold the node. Needs root (or sudo).
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK="# written by essential-sparsity workflow/profiles/slurm/single-node.sh"
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)

if scontrol ping 2>/dev/null | grep -q "is UP"; then
    exit 0
fi
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client >/dev/null
fi
if [ -f "$CONF" ] && ! grep -qxF "$MARK" "$CONF"; then
    echo "single-node.sh: $CONF exists and is not ours, and its controller does not answer;" \
         "start that cluster, or move the file away to let this script write a one-node one" >&2
    exit 1
fi

host=$(hostname -s)
# The node line as slurmd measures this machine, with twice its cores.
node=$(slurmd -C | head -n1 | awk '{for (i = 1; i <= NF; i++) {
    split($i, kv, "="); if (kv[1] == "CPUs" || kv[1] == "CoresPerSocket") $i = kv[1] "=" 2 * kv[2]
} print}')
$SUDO mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
# GPUs, where the machine has any, become the node's gpu resources: Slurm then sets each job's
# CUDA_VISIBLE_DEVICES to the GPUs it was given.
gpus=$(nvidia-smi -L 2>/dev/null | grep -c "^GPU" || true)
gres=""
if [ "$gpus" -gt 0 ]; then
    gres="GresTypes=gpu"
    node="$node Gres=gpu:$gpus"
    echo "Name=gpu File=/dev/nvidia[0-$((gpus - 1))]" | $SUDO tee /etc/slurm/gres.conf >/dev/null
fi
$SUDO tee "$CONF" >/dev/null <<EOF
$MARK
ClusterName=local
SlurmctldHost=$host(127.0.0.1)
AuthType=auth/none
CredType=cred/none
SlurmUser=root
SlurmdUser=root
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
$gres
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
# Daemons of ours that no longer answer are stopped; the controller starts with no saved state.
$SUDO pkill -x slurmctld || true
$SUDO pkill -x slurmd || true
sleep 1
$SUDO slurmctld -c
$SUDO slurmd
for _ in $(seq 120); do
    if sinfo -h -o %t 2>/dev/null | grep -qxE "idle|mix|alloc"; then
        echo "single-node.sh: Slurm is up: $(sinfo -h -o '%P %D node(s) %c CPUs %m MB %t')"
        exit 0
    fi
    sleep 0.5
done
{
    echo "single-node.sh: slurmctld/slurmd started but the node is not ready after 60 s:" \
         "$(sinfo -h -N -o '%N %t %E' 2>&1 | tr '\n' ' ')"
    for log in /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log; do
        echo "--- last lines of $log"
        $SUDO tail -n 15 "$log" 2>&1
    done
} >&2
exit 1
