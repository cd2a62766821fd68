"""Snakemake for the one-node test cluster: it asks Slurm about its jobs every 2 s.

The Slurm plugin waits 10 s longer before its next status check each time a check finds no job
finished, up to 3 minutes. That suits a shared cluster, whose jobs run for hours. On the test
cluster, whose jobs last seconds, it left both cores idle for 15 to 25 s at each step of the DAG,
about 150 s of the smoke build's 660. The wait is capped here and nowhere else: a real cluster
keeps the plugin's default. Run as `python snakemake_polling_often.py ARGS...` for
`snakemake ARGS...`.
"""

from __future__ import annotations

import sys

from snakemake.cli import main
from snakemake_interface_executor_plugins.executors.remote import RemoteExecutor

SECONDS = 2


def _capped(executor: RemoteExecutor, seconds: float) -> None:
    executor._next_seconds_between_status_checks = min(seconds, SECONDS)


RemoteExecutor.next_seconds_between_status_checks = (
    RemoteExecutor.next_seconds_between_status_checks.setter(_capped))

if __name__ == "__main__":
    sys.exit(main())
