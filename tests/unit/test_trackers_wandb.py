"""The wandb callback's run handling, with wandb itself replaced by a mock (no wandb process)."""

from __future__ import annotations

from types import SimpleNamespace
from unittest.mock import MagicMock

import pytest

pytest.importorskip("wandb")


class _Config(dict):
    """wandb.Config's update() signature."""

    def update(self, values, allow_val_change=False):
        super().update(values)


def _fake_wandb(open_run_config):
    fake = MagicMock()
    fake.run = None
    if open_run_config is not None:
        fake.run = MagicMock(config=_Config(open_run_config), id="old")

    def init(**kwargs):
        import os

        fake.init_dir = os.environ.get("WANDB_DIR")
        fake.run = MagicMock(config=_Config(), id="new", dir=fake.init_dir)
        fake.run.settings.mode = "offline"
        return fake.run

    def finish():
        fake.run = None

    fake.init.side_effect = init
    fake.finish.side_effect = finish
    return fake


@pytest.mark.parametrize(
    ("open_run", "finished"),
    [
        (None, False),  # nothing open: a new run
        ({"rerankctl_run_id": "run-a"}, True),  # left open by an earlier rerankctl run: closed first
        ({"rerankctl_run_id": "run-b"}, False),  # this run's own (set up again): kept
        ({"lr": 1}, False),  # the user's own wandb.init(): kept, the stock callback logs into it
    ],
)
def test_setup_closes_only_an_earlier_rerankctl_run(open_run, finished, tmp_path, monkeypatch):
    from transformers import TrainerState, TrainingArguments

    from rerankctl.train.trackers import wandb_callback

    monkeypatch.delenv("WANDB_DIR", raising=False)
    writer = SimpleNamespace(id="run-b", name="b", events=[])
    writer.log_event = writer.events.append
    callback = wandb_callback(writer, str(tmp_path / "out"))
    callback._wandb = fake = _fake_wandb(open_run)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), report_to="none", run_name="b")
    callback.setup(args, TrainerState(), model=None)

    assert fake.finish.called is finished
    assert fake.init.called is (open_run is None or finished)
    if fake.init.called:
        assert fake.init_dir == str(tmp_path / "out")  # WANDB_DIR only while wandb.init ran
    import os

    assert "WANDB_DIR" not in os.environ
    assert fake.run.config["rerankctl_run_id"] == "run-b"
    assert writer.events and writer.events[-1].startswith("wandb: run ")
