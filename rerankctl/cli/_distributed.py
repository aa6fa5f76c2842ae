"""Starting the workers of a distributed `train` run.

The distributed options themselves (``--gpus``, ``--nnodes``, ``--node-rank``, ``--master-addr``,
``--master-port``, ``--accelerate-config``, ``--deepspeed``, ``--fsdp``) are the fields of
:class:`rerankctl.config.distributed.DistributedConfig`, which every train config nests
(``distributed``); cli/_options.py turns them into the same options in all four commands.
"""

from __future__ import annotations

from typing import Any

import typer


def launch_if_asked(cfg: Any) -> None:
    """Start the workers of a distributed run and exit with their code, when the flags ask for one.

    Inside a worker (``RANK`` set by the launcher) nothing is started again.
    """
    import os

    dist = cfg.distributed
    if not dist.launches or "RANK" in os.environ:
        return
    import sys

    from rerankctl.train.launch import relaunch_distributed

    raise typer.Exit(relaunch_distributed(dist, sys.argv[1:]))
