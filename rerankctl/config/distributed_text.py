"""Help texts of the distributed options, in a module without pydantic.

The CLI builds its options from these at import time (``rerankctl --help`` stays light) and
:class:`rerankctl.config.distributed.DistributedConfig` uses them as its field descriptions, so
each text exists once.
"""

DESCRIPTIONS = {
    "gpus": "Processes on this machine: GPUs '0,1,2,3', 'auto' (idle ones), 'auto:N' (the N freest), "
    "or 'cpu:N' (N CPU processes over gloo). Unset: one process.",
    "nnodes": "Machines taking part (each runs the same command).",
    "node_rank": "This machine's index, 0 .. nnodes-1 (0 writes the output).",
    "master_addr": "Address of machine 0, reachable from every machine (needed when nnodes > 1).",
    "master_port": "Free TCP port on machine 0 for the rendezvous (default 29500).",
    "accelerate_config": "An `accelerate config` YAML file; the processes are started by `accelerate launch` "
    "with it.",
    "deepspeed": "DeepSpeed ZeRO: zero2, zero3, zero2-offload, zero3-offload (built-in configs) or a "
    "DeepSpeed JSON file. Needs CUDA GPUs and the deepspeed package.",
    "fsdp": "FSDP2 (PyTorch fully sharded data parallel) through accelerate: full shard, auto-wrap of the "
    "decoder layer class, full state dict at save. Needs CUDA GPUs (not yet tried on one).",
}
