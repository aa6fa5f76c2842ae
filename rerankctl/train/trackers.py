"""``--report-to`` at run time: the stock Trainer callbacks, named after the run and kept in one run.

Every trainer of this package (SFT, RL, reward, VL reward) is a Hugging Face ``Trainer``, so
``report_to`` builds transformers' own ``TensorBoardCallback`` / ``MLflowCallback`` / ...; the RL
trainer's statistics (clip fraction, KL, rewards) go through ``Trainer.log`` and reach them too.
:func:`attach_trackers` adjusts five things the stock setup gets wrong for us:

- the tracker's run is named after the rerankctl run (``args.run_name``; otherwise MLflow picks a
  random name such as ``capable-auk-759``) and tagged with its id;
- MLflow without ``MLFLOW_TRACKING_URI`` would default to ``sqlite:///mlflow.db`` in the current
  directory, which mlflow-skinny cannot open (no SQLAlchemy); we default to a local file store
  under ``$RERANKCTL_HOME/mlruns`` and, for file stores only, set ``MLFLOW_ALLOW_FILE_STORE=true``
  (MLflow 3.x refuses its file backend, now in maintenance mode, without it);
- the stock ``TensorBoardCallback`` picks its directory at ``on_train_begin``; a log before that
  (the reward trainers' baseline evaluation) opened a writer with no directory, so every event
  file went to ``./runs`` in the current directory. We fix the directory up front:
  ``<output>/runs/<date>_<host>`` (or ``TENSORBOARD_LOGGING_DIR``);
- wandb keeps its local files (all of an offline run) in ``./wandb``; ours go to the run's output
  (``<output>/wandb/``) unless ``WANDB_DIR`` says otherwise;
- the stock ``MLflowCallback`` ends its run at ``on_train_end``, so the final evaluation that the
  runners log after training landed in a second, randomly named MLflow run. Our subclass reopens
  the finished run for such late logs and closes it again.
"""

from __future__ import annotations

import os
from typing import Any

from rerankctl.config.trackers import default_mlflow_env


def mlflow_callback(writer: Any) -> Any:
    """An ``MLflowCallback`` that tags its run with the rerankctl run and takes late logs into it."""
    from transformers.integrations import MLflowCallback

    class RunMLflowCallback(MLflowCallback):
        def __init__(self) -> None:
            super().__init__()
            self.writer = writer
            self.closed_run_id: str | None = None

        def setup(self, args, state, model):
            super().setup(args, state, model)
            run = self._ml_flow.active_run()
            if run is None or not state.is_world_process_zero:
                return
            self._ml_flow.set_tags({"rerankctl.run_id": writer.id, "rerankctl.run_name": writer.name})
            writer.log_event(f"mlflow: run {run.info.run_id} in {self._ml_flow.get_tracking_uri()}")

        def on_train_end(self, args, state, control, **kwargs):
            run = self._ml_flow.active_run() if self._initialized else None
            super().on_train_end(args, state, control, **kwargs)
            if run is not None and self._ml_flow.active_run() is None:
                self.closed_run_id = run.info.run_id

        def on_log(self, args, state, control, logs, model=None, **kwargs):
            reopen = (
                self.closed_run_id is not None
                and state.is_world_process_zero
                and self._ml_flow.active_run() is None
            )
            if not reopen:
                return super().on_log(args, state, control, logs, model=model, **kwargs)
            # A log after training (the runners' final evaluate()): into the same run, then close it.
            self._ml_flow.start_run(run_id=self.closed_run_id)
            try:
                super().on_log(args, state, control, logs, model=model, **kwargs)
            finally:
                self._ml_flow.end_run()

    return RunMLflowCallback()


def wandb_callback(writer: Any, output_dir: str) -> Any:
    """A ``WandbCallback`` whose local files (offline runs too) go to ``output_dir``, not ``./wandb``.

    ``WANDB_DIR`` is set only while ``wandb.init`` runs (it reads it then), and only when the user
    has not set it, so a second run in the same process gets its own directory.
    """
    from transformers.integrations import WandbCallback

    class RunWandbCallback(WandbCallback):
        def setup(self, args, state, model, **kwargs):
            # The stock setup logs into any open wandb run; one left open by an earlier rerankctl
            # run in this process (wandb finishes runs at exit) is closed first. A user's own stays.
            previous = getattr(self._wandb, "run", None) if self._wandb is not None else None
            earlier = previous is not None and previous.config.get("rerankctl_run_id") not in (
                None,
                writer.id,
            )
            if earlier and state.is_world_process_zero:
                self._wandb.finish()
            own = "WANDB_DIR" not in os.environ
            if own:
                os.environ["WANDB_DIR"] = output_dir
            try:
                super().setup(args, state, model, **kwargs)
            finally:
                if own:
                    os.environ.pop("WANDB_DIR", None)
            run = getattr(self._wandb, "run", None)
            if run is not None and state.is_world_process_zero:
                run.config.update({"rerankctl_run_id": writer.id}, allow_val_change=True)
                mode = getattr(getattr(run, "settings", None), "mode", None) or "online"
                writer.log_event(f"wandb: run {run.id} ({mode}) in {run.dir}")

    return RunWandbCallback()


def attach_trackers(trainer: Any, writer: Any) -> None:
    """Name the trackers' run after ``writer``'s run and swap in :func:`mlflow_callback`.

    ``writer`` is None on non-main processes (they report nothing), and then nothing changes.
    """
    if writer is None:
        return
    args = trainer.args
    names = [args.report_to] if isinstance(args.report_to, str) else list(args.report_to or [])
    if not names or names == ["none"]:
        return
    if not args.run_name:
        args.run_name = writer.name
    from transformers.integrations import MLflowCallback, TensorBoardCallback, WandbCallback
    from transformers.integrations.integration_utils import default_logdir

    if "mlflow" in names:
        default_mlflow_env()
    callbacks = trainer.callback_handler.callbacks
    for i, callback in enumerate(callbacks):
        if type(callback) is MLflowCallback:
            callbacks[i] = mlflow_callback(writer)
        elif type(callback) is WandbCallback:
            callbacks[i] = wandb_callback(writer, str(args.output_dir))
        elif isinstance(callback, TensorBoardCallback):
            if callback.logging_dir is None:
                callback.logging_dir = os.path.join(args.output_dir, default_logdir())
            writer.log_event(f"tensorboard: event files in {callback.logging_dir}")
