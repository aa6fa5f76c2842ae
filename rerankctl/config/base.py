"""The base class of every command's configuration model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class StrictConfig(BaseModel):
    """A config model that rejects unknown keys and validates on assignment.

    Every field carries a ``description`` (shown by ``--help`` and in ``--print-config``
    comments), in the spirit of TRL's config dataclasses.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-friendly dict (paths as strings, None values dropped for TOML)."""
        return self.model_dump(mode="json")
