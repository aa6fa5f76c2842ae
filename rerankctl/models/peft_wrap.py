"""peft wrapping without transformers' ``is_gradient_checkpointing`` FutureWarning.

peft (``PeftModel.__init__``) still reads ``model.is_gradient_checkpointing``, which transformers
deprecated in favour of ``is_activation_checkpointing``; every wrap printed one FutureWarning
(22 in the test suite). The property returns the same value either way, so the warning is muted
only around our peft calls, only for that message; every other warning still shows.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

_MESSAGE = r"`is_gradient_checkpointing` is deprecated"


@contextlib.contextmanager
def quiet_checkpointing_deprecation() -> Iterator[None]:
    """Mute transformers' ``is_gradient_checkpointing`` FutureWarning raised from inside peft."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_MESSAGE, category=FutureWarning)
        yield


def get_peft_model(model: Any, config: Any, **kwargs: Any) -> Any:
    """``peft.get_peft_model`` without the deprecation warning peft triggers in transformers."""
    import peft

    with quiet_checkpointing_deprecation():
        return peft.get_peft_model(model, config, **kwargs)


def load_adapter(model: Any, path: Any, **kwargs: Any) -> Any:
    """``peft.PeftModel.from_pretrained`` without the same warning."""
    from peft import PeftModel

    with quiet_checkpointing_deprecation():
        return PeftModel.from_pretrained(model, path, **kwargs)
