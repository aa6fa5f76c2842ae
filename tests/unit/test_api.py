"""The public Python API: lazy names, and the original scripts' spellings mapped to ours."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import rerankctl
from rerankctl.config.aliases import FLAG_ALIASES, KEYWORD_ALIASES, VALUE_ALIASES, canonical, rename_keywords


def test_import_and_public_names_load_no_torch():
    code = (
        "import sys, rerankctl\n"
        "from rerankctl import Qwen3Reranker, RerankDataset, MTEBRerankEvaluator, sample_documents, "
        "set_proxy, evaluate_reranking_dataset, APIReranker, SFTConfig, RerankRecord\n"
        "print([m for m in ('torch', 'transformers', 'datasets', 'mteb') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_public_name_resolves():
    for name in rerankctl.__all__:
        assert getattr(rerankctl, name) is not None, name
    assert "Qwen3Reranker" in dir(rerankctl)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        rerankctl.Nope  # noqa: B018


# ------------------------------------------------------------------------------------ the alias table


@pytest.mark.parametrize(("alias", "name"), sorted(VALUE_ALIASES["loss_type"].items()))
def test_sft_loss_type_aliases(alias, name):
    from rerankctl.config.sft import SFTConfig
    from rerankctl.losses import LOSSES

    assert SFTConfig(loss_type=alias).loss_type == name
    assert name in LOSSES  # every alias lands on a registered loss


@pytest.mark.parametrize(("alias", "name"), sorted(VALUE_ALIASES["infonce_mode"].items()))
def test_infonce_mode_aliases(alias, name):
    from rerankctl.config.sft import SFTConfig

    assert SFTConfig(infonce_mode=alias).infonce_mode == name


@pytest.mark.parametrize(("alias", "name"), sorted(VALUE_ALIASES["reward_type"].items()))
def test_reward_type_aliases(alias, name):
    from rerankctl.config.rl import RLConfig

    extra = {"policy": "pointwise"} if name == "score_based" else {}
    assert RLConfig(reward_type=alias, **extra).reward_type == name


@pytest.mark.parametrize(("alias", "name"), sorted(VALUE_ALIASES["rl_loss_type"].items()))
def test_rl_loss_type_aliases(alias, name):
    from rerankctl.config.rl import RLConfig

    assert RLConfig(loss_type=alias).loss_type == name


def test_unknown_values_still_rejected():
    from pydantic import ValidationError

    from rerankctl.config.sft import SFTConfig

    with pytest.raises(ValidationError):
        SFTConfig(infonce_mode="bogus")
    assert canonical("loss_type", "infonce") == "infonce"
    assert canonical("loss_type", 3) == 3


def test_rename_keywords():
    assert rename_keywords("RLTrainer", {"yes_token_id": 1, "x": 2}) == {"yes_id": 1, "x": 2}
    with pytest.raises(TypeError, match="both 'yes_token_id' and 'yes_id'"):
        rename_keywords("RLTrainer", {"yes_token_id": 1, "yes_id": 1})
    for table in KEYWORD_ALIASES.values():
        assert not set(table) & set(table.values())  # no alias is also a canonical name
    assert FLAG_ALIASES == {"--endpoint": "--endpoints"}


# ------------------------------------------------------------------------------------ adapters


def _rerank_file(tmp_path):
    path = tmp_path / "dev.jsonl"
    rows = [
        {"query": "q1", "pos": ["alpha"], "neg": ["bb", "ccc"]},
        {"query": "q2", "pos": ["dd"], "neg": ["e", "ffffff"]},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_rerank_dataset_with_path_and_tokenizer(tmp_path, qwen3_tokenizer):
    path = _rerank_file(tmp_path)
    ds = rerankctl.RerankDataset(str(path), tokenizer=qwen3_tokenizer, max_length=128, num_docs=3)
    assert len(ds) == 2 and ds.n_docs == 3
    group = ds[0]
    assert group["query"] == "q1" and sorted(group["docs"]) == ["alpha", "bb", "ccc"]
    batch = ds.collate_fn([ds[0], ds[1]])
    assert batch["input_ids"].shape[0] == 6  # 2 groups x 3 documents, one row each
    same = rerankctl.RerankDataset(path=str(path))
    assert same.collate_fn is None and len(same) == 2
    with pytest.raises(TypeError, match="needs a data source"):
        rerankctl.RerankDataset(tokenizer=qwen3_tokenizer)


def test_sample_documents_seed_call():
    docs = ["p", "n1", "n2", "n3"]
    chosen = rerankctl.sample_documents(docs, [1.0, 0.0, 0.0, 0.0], 1, 2)
    assert chosen[0] == 0 and len(chosen) == 3 and set(chosen[1:]) <= {1, 2, 3}
    # labels given: scores are the teacher's, and hard negatives are the highest-scored ones
    hard = rerankctl.sample_documents(docs, [0.1, 0.9, 0.2, 0.8], 1, 2, labels=[1, 0, 0, 0])
    assert hard == [0, 1, 3]


def test_mteb_evaluator_rerank_fn():
    def fn(query, docs):
        return [float(len(d)) for d in docs]

    ev = rerankctl.MTEBRerankEvaluator(rerank_fn=fn, name="len")
    assert ev.name == "len"
    assert ev.scorer.score_groups([("q", ["a", "bbb"])]) == [[1.0, 3.0]]
    with pytest.raises(TypeError, match="needs a reranker"):
        rerankctl.MTEBRerankEvaluator()


def test_set_proxy(monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    rerankctl.set_proxy("http://proxy:3128", ["http://10.1.2.3:9997"])
    import os

    assert os.environ["HTTPS_PROXY"] == "http://proxy:3128"
    assert "10.1.2.3" in os.environ["NO_PROXY"].split(",") and "127.0.0.1" in os.environ["NO_PROXY"]


def test_evaluate_reranking_dataset_worked_example(tmp_path):
    """Longest document first: q1's positive ranks 1st of 3, q2's ranks 2nd of 3."""
    metrics = rerankctl.evaluate_reranking_dataset(
        lambda q, docs: [float(len(d)) for d in docs], _rerank_file(tmp_path), ks=(1, 3)
    )
    assert metrics["mrr"] == pytest.approx((1 + 1 / 2) / 2)
    assert metrics["ndcg@1"] == pytest.approx(0.5)
    import math

    assert metrics["ndcg@3"] == pytest.approx((1 + 1 / math.log2(3)) / 2)


def _training_args(tmp_path):
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(tmp_path / "out"), report_to="none", max_steps=1, disable_tqdm=True
    )


def test_contrastive_sft_trainer_seed_keywords(tmp_path, tiny_qwen3_path, qwen3_tokenizer):
    from transformers import AutoModelForCausalLM

    from rerankctl.data.prompt import get_yes_no_token_ids

    yes, no = get_yes_no_token_ids(qwen3_tokenizer)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_qwen3_path))
    trainer = rerankctl.ContrastiveSFTTrainer(
        model=model, args=_training_args(tmp_path), train_dataset=[],
        yes_token_id=yes, no_token_id=no, loss_type="lambda_loss", lambda_metric="mrr",
    )  # fmt: skip
    assert (trainer.yes_id, trainer.no_id) == (yes, no)
    assert trainer.loss_fn.spec.name == "lambdaloss" and trainer.loss_fn.options["metric"] == "mrr"
    from_tok = rerankctl.ContrastiveSFTTrainer(
        model=model, args=_training_args(tmp_path), train_dataset=[], processing_class=qwen3_tokenizer,
        loss_type="list_mle",
    )  # fmt: skip
    assert (from_tok.yes_id, from_tok.no_id) == (yes, no) and from_tok.loss_fn.spec.name == "listmle"
    with pytest.raises(TypeError, match="yes_token_id"):
        rerankctl.ContrastiveSFTTrainer(model=model, args=_training_args(tmp_path), train_dataset=[])


def test_rl_trainer_seed_keywords(tmp_path, tiny_qwen3_path, qwen3_tokenizer):
    from rerankctl.config.sft import LoRAConfig
    from rerankctl.data.prompt import get_yes_no_token_ids
    from rerankctl.models.sft_loading import load_sft_model

    yes, no = get_yes_no_token_ids(qwen3_tokenizer)
    model = load_sft_model(str(tiny_qwen3_path), lora=LoRAConfig(r=4, alpha=8))
    trainer = rerankctl.RLTrainer(
        model=model, args=_training_args(tmp_path), train_dataset=[], processing_class=qwen3_tokenizer,
        yes_token_id=yes, no_token_id=no, reward_type="ndcg", loss_type="drgrpo",
    )  # fmt: skip
    assert (trainer.yes_id, trainer.no_id) == (yes, no)
    assert trainer.reward_type == "ndcg_based" and trainer.loss_type == "dr_grpo"


def test_eval_endpoint_singular_flag():
    from rerankctl.cli.eval import canonical_flags

    args = [
        "--endpoint",
        "http://a",
        "--endpoint=http://b",
        "--embedding-endpoint",
        "http://e",
        "reward",
        "--endpoint",
    ]
    assert canonical_flags(args, {"reward"}) == [
        "--endpoints", "http://a", "--endpoints=http://b", "--embedding-endpoint", "http://e", "reward", "--endpoint",
    ]  # fmt: skip


def test_eval_endpoint_singular_flag_parses(tmp_path):
    """`eval --endpoint URL` reaches the run (here: the missing --input file), not 'No such option'."""
    proc = subprocess.run(
        [sys.executable, "-m", "rerankctl", "eval", "--endpoint", "http://127.0.0.1:9", "--input",
         str(tmp_path / "missing.jsonl"), "--no-store"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "No such option" not in proc.stderr and "missing.jsonl" in proc.stderr
