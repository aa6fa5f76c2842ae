"""Dataset groups: sizes, every name in the installed mteb registry, resolution, --list-datasets."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rerankctl.errors import UsageError
from rerankctl.eval.groups import GROUPS, TWO_STAGE_DEFAULT, resolve_tasks


def test_group_sizes_match_the_issue():
    sizes = {name: len(tasks) for name, tasks in GROUPS.items()}
    assert sizes == {"chinese": 4, "english": 6, "multilingual": 3, "other": 5, "code": 4, "all": 22}
    assert GROUPS["chinese"] == ("T2Reranking", "MMarcoReranking", "CMedQAv1-reranking", "CMedQAv2-reranking")
    assert len(set(GROUPS["all"])) == 22  # no task in two groups


def test_every_task_is_a_reranking_task_of_the_installed_mteb():
    import mteb

    registry = {t.metadata.name: t.metadata for t in mteb.get_tasks()}
    for name in GROUPS["all"]:
        assert name in registry, f"{name} is not in the installed mteb's registry"
        assert registry[name].type == "Reranking", (name, registry[name].type)
    # MMarcoRetrieval is superseded in mteb 2 (by its multilingual version) but still runs.
    registry = {t.metadata.name: t.metadata for t in mteb.get_tasks(exclude_superseded=False)}
    for name in TWO_STAGE_DEFAULT:
        assert registry[name].type == "Retrieval"
        assert registry[name].main_score == "ndcg_at_10"


def test_resolve_expands_groups_keeps_order_and_drops_repeats():
    assert resolve_tasks(["chinese"]) == list(GROUPS["chinese"])
    assert resolve_tasks(["T2Reranking,code", "chinese"]) == [
        "T2Reranking",
        *GROUPS["code"],
        *GROUPS["chinese"][1:],
    ]
    assert resolve_tasks(["ENGLISH"]) == list(GROUPS["english"])
    assert resolve_tasks(["SomeTask"]) == ["SomeTask"]  # checked later, against the registry
    with pytest.raises(UsageError):
        resolve_tasks([" , "])


def test_unknown_task_gets_a_suggestion():
    from rerankctl.eval.mteb_runner import get_task

    with pytest.raises(UsageError) as err:
        get_task("T2Rerankin")
    assert "T2Rerankin" in err.value.message and "T2Reranking" in (err.value.hint or "")


def test_mock_tasks_resolve_by_name():
    from rerankctl.eval.mteb_runner import get_task

    assert get_task("MockRerankingTask").metadata.main_score == "map_at_1000"


def test_list_datasets_prints_groups_tasks_languages_and_main_scores():
    from rerankctl.cli.app import build_app

    result = CliRunner().invoke(build_app(), ["eval", "--list-datasets"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "chinese (4 tasks)" in lines and "code (4 tasks)" in lines
    t2 = next(line for line in lines if "T2Reranking" in line).split()
    assert t2 == ["T2Reranking", "map_at_1000", "cmn"]
    assert next(line for line in lines if "WebLINXCandidatesReranking" in line).split()[1] == "mrr_at_10"
    assert next(line for line in lines if "MIRACLReranking" in line).split()[1] == "ndcg_at_10"

    result = CliRunner().invoke(build_app(), ["eval", "--list-datasets", "--json"])
    data = json.loads(result.output)
    assert len(data["tasks"]) == 22 and data["groups"]["all"] == list(GROUPS["all"])
