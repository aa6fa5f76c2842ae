"""Best-model tracking and early stopping of the pairwise reward trainers (no model needed)."""

from __future__ import annotations

from types import SimpleNamespace

from rerankctl.train.reward_base import CHECKPOINT_RE, PairwiseRewardTrainer, latest_checkpoint, list_steps


def fake_trainer(patience):
    return SimpleNamespace(
        state=SimpleNamespace(best_metric=None, best_global_step=None, global_step=0),
        control=SimpleNamespace(should_training_stop=False),
        args=SimpleNamespace(should_save=True),
        metric_for_best="eval_accuracy",
        greater_is_better=True,
        keep_best=False,
        early_stopping_patience=patience,
        bad_evals=0,
        best_value=None,
        best_step=None,
    )


def test_best_tracking_and_patience():
    t = fake_trainer(patience=2)
    for step, value in ((10, 0.5), (20, 0.7), (30, 0.6)):
        t.state.global_step = step
        PairwiseRewardTrainer._track_best(t, {"eval_accuracy": value})
    assert (t.state.best_metric, t.state.best_global_step, t.bad_evals) == (0.7, 20, 1)
    assert not t.control.should_training_stop
    t.state.global_step = 40
    PairwiseRewardTrainer._track_best(t, {"eval_accuracy": 0.7})  # equal is not better
    assert t.control.should_training_stop and t.best_step == 20


def test_no_patience_never_stops_and_missing_metric_is_ignored():
    t = fake_trainer(patience=None)
    for value in (0.9, 0.1, 0.1, 0.1):
        PairwiseRewardTrainer._track_best(t, {"eval_accuracy": value})
    PairwiseRewardTrainer._track_best(t, {"eval_loss": 0.3})
    assert not t.control.should_training_stop and t.bad_evals == 3


def test_checkpoint_listing_orders_by_step_and_needs_trainer_state(tmp_path):
    for step in (2, 10, 9):
        (tmp_path / f"checkpoint_step_{step}").mkdir()
    (tmp_path / "checkpoint-3").mkdir()  # the Trainer's own name is not ours
    assert [s for s, _ in list_steps(tmp_path, CHECKPOINT_RE)] == [2, 9, 10]
    assert latest_checkpoint(tmp_path) is None  # none is complete yet
    (tmp_path / "checkpoint_step_9" / "trainer_state.json").write_text("{}")
    assert latest_checkpoint(tmp_path).name == "checkpoint_step_9"
