"""The distributed options: validation before any import, the launcher's command lines, the
TrainingArguments each strategy becomes, and the shipped DeepSpeed configurations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from rerankctl.config.distributed import BUILTIN_DEEPSPEED, DistributedConfig
from rerankctl.train.hf_args import deepspeed_config_path, distributed_args
from rerankctl.train.launch import accelerate_args, torchrun_args

ARGV = ["train", "sft", "--preset", "tiny", "--gpus", "cpu:1", "--nnodes", "2", "--node-rank", "1"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"nnodes": 2, "gpus": "cpu:1"}, "--master-addr"),
        ({"nnodes": 2, "master_addr": "h"}, "--gpus"),
        ({"nnodes": 2, "node_rank": 2, "master_addr": "h", "gpus": "0"}, "below --nnodes"),
        ({"deepspeed": "zero2", "fsdp": True}, "choose one"),
        ({"deepspeed": "zero3", "gpus": "cpu:2"}, "CUDA"),
        ({"deepspeed": "zero4"}, "zero2, zero3"),
        ({"fsdp": True, "gpus": "cpu:2"}, "plain DDP"),
        ({"deepspeed": "/nope/ds.json"}, "does not exist"),
        ({"accelerate_config": "/nope/a.yaml"}, "does not exist"),
    ],
)
def test_bad_combinations_are_refused(fields, message):
    with pytest.raises(ValidationError, match=message):
        DistributedConfig(**fields)


def test_a_bad_combination_is_one_line_before_heavy_imports(tmp_path):
    cmd = [sys.executable, "-m", "rerankctl", "train", "reward", "--preset", "tiny_reward"]
    cmd += ["--deepspeed", "zero3", "--fsdp"]
    env = {"RERANKCTL_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=60, env={**__import__("os").environ, **env}
    )
    assert proc.returncode == 2
    assert "choose one" in proc.stderr and "Traceback" not in proc.stderr


def test_one_machine_uses_a_standalone_rendezvous():
    dist = DistributedConfig(gpus="cpu:2")
    args = torchrun_args(dist, 2, ["train", "sft", "--gpus", "cpu:2", "--max-steps", "3"])
    assert args == [
        "--nproc-per-node=2",
        "--standalone",
        "-m",
        "rerankctl",
        "train",
        "sft",
        "--max-steps",
        "3",
    ]


def test_several_machines_meet_at_machine_zero():
    dist = DistributedConfig(gpus="cpu:1", nnodes=2, node_rank=1, master_addr="10.1.2.3", master_port=29555)
    args = torchrun_args(dist, 1, ARGV + ["--master-addr", "10.1.2.3", "--master-port", "29555"])
    assert args[:5] == [
        "--nproc-per-node=1",
        "--nnodes=2",
        "--node-rank=1",
        "--master-addr=10.1.2.3",
        "--master-port=29555",
    ]
    assert args[5:] == ["-m", "rerankctl", "train", "sft", "--preset", "tiny"]
    # torch's own parser takes them: what it would run is rerankctl as a module.
    from torch.distributed.run import parse_args

    parsed = parse_args(args)
    assert (parsed.nnodes, parsed.node_rank, parsed.master_port, parsed.module) == ("2", 1, 29555, True)
    assert parsed.training_script == "rerankctl"


def test_an_accelerate_config_is_launched_by_accelerate(tmp_path):
    config = tmp_path / "acc.yaml"
    config.write_text("compute_environment: LOCAL_MACHINE\ndistributed_type: MULTI_GPU\nnum_processes: 2\n")
    dist = DistributedConfig(
        gpus="0,1", accelerate_config=str(config), nnodes=2, master_addr="h", master_port=1234
    )
    args = accelerate_args(dist, ["0", "1"], 2, ["train", "sft", "--accelerate-config", str(config)])
    from accelerate.commands.launch import launch_command_parser

    parsed = launch_command_parser().parse_args(args)
    assert parsed.config_file == str(config) and parsed.module and parsed.training_script == "rerankctl"
    assert (parsed.num_processes, parsed.num_machines, parsed.machine_rank) == (4, 2, 0)
    assert (parsed.gpu_ids, parsed.main_process_ip, parsed.main_process_port) == ("0,1", "h", 1234)
    assert parsed.training_script_args == ["train", "sft"]


def test_fsdp_becomes_fsdp2_with_a_full_state_dict_at_save():
    kwargs = distributed_args(DistributedConfig(fsdp=True))
    assert kwargs["fsdp"] == "full_shard auto_wrap"
    assert kwargs["fsdp_config"]["version"] == 2
    assert kwargs["fsdp_config"]["state_dict_type"] == "FULL_STATE_DICT"
    assert distributed_args(DistributedConfig()) == {}


def test_fsdp_arguments_are_what_transformers_hands_accelerate(tmp_path):
    from transformers import TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", **distributed_args(
        DistributedConfig(fsdp=True)
    ))  # fmt: skip
    plugin = args._process_fsdp_args()
    assert plugin["fsdp_version"] == 2 and plugin["reshard_after_forward"] is True
    assert plugin["state_dict_type"] == "FULL_STATE_DICT"
    assert plugin["auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"  # the model's _no_split_modules layers


@pytest.mark.parametrize("name", BUILTIN_DEEPSPEED)
def test_shipped_deepspeed_configs_are_valid(name):
    path = Path(deepspeed_config_path(name))
    assert path.is_file() and path.parent.name == "deepspeed_configs"
    raw = json.loads(path.read_text())
    from accelerate.utils.deepspeed import HfDeepSpeedConfig

    config = HfDeepSpeedConfig(str(path))
    stage = 3 if name.startswith("zero3") else 2
    assert config.get_value("zero_optimization.stage") == stage
    assert config.is_zero3() == (stage == 3)
    assert config.is_offload() == name.endswith("offload")
    # Batch sizes, accumulation, clipping and precision follow the trainer's own flags.
    for key in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "gradient_clipping"):
        assert raw[key] == "auto"
    if stage == 3:  # final/ must be an ordinary model directory
        assert raw["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True


@pytest.mark.parametrize("name", BUILTIN_DEEPSPEED)
def test_deepspeed_itself_accepts_the_configs_filled_by_the_trainer(name, tmp_path):
    pytest.importorskip("deepspeed", reason="the deepspeed package (extra [deepspeed]) is not installed")
    from transformers import TrainingArguments
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    args = TrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, report_to="none", per_device_train_batch_size=4,
        gradient_accumulation_steps=2, max_grad_norm=0.5,
    )  # fmt: skip
    config = HfTrainerDeepSpeedConfig(deepspeed_config_path(name))
    config.trainer_config_process(args)
    config.trainer_config_finalize(args, SimpleNamespace(config=SimpleNamespace(hidden_size=64)), 100)
    filled = config.config
    assert filled["train_micro_batch_size_per_gpu"] == 4 and filled["gradient_accumulation_steps"] == 2
    assert filled["gradient_clipping"] == 0.5
    assert "auto" not in json.dumps(filled["zero_optimization"])
    from deepspeed.runtime.zero.config import DeepSpeedZeroConfig

    zero = DeepSpeedZeroConfig(**filled["zero_optimization"])  # deepspeed's own pydantic validation
    assert int(zero.stage) == (3 if name.startswith("zero3") else 2)
