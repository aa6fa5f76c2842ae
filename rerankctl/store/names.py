"""Short run ids and readable run names (``sft-brisk-otter-4821``)."""

from __future__ import annotations

import random
import re
import uuid

ID_LENGTH = 12

_ADJECTIVES = (
    "amber", "bold", "brisk", "calm", "clever", "crisp", "dapper", "eager", "fancy", "fleet",
    "gentle", "glad", "grand", "happy", "hazy", "jolly", "keen", "lively", "lucky", "mellow",
    "merry", "misty", "nimble", "noble", "plucky", "proud", "quick", "quiet", "rapid", "rosy",
    "shiny", "silent", "snowy", "steady", "sunny", "swift", "tidy", "vivid", "witty", "zesty",
)  # fmt: skip
_NOUNS = (
    "badger", "bison", "crane", "dingo", "eagle", "falcon", "ferret", "gecko", "heron", "ibis",
    "jackal", "koala", "lemur", "lynx", "marten", "moose", "newt", "ocelot", "orca", "otter",
    "owl", "panda", "puffin", "quokka", "raven", "robin", "salmon", "seal", "shrike", "sloth",
    "stoat", "swan", "tapir", "tern", "toucan", "viper", "walrus", "wombat", "yak", "zebra",
)  # fmt: skip

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def new_run_id() -> str:
    """A random 12-hex-digit id (48 bits: collisions are checked, and practically never happen)."""
    return uuid.uuid4().hex[:ID_LENGTH]


def readable_name(kind: str, rng: random.Random | None = None) -> str:
    """``<kind>-<adjective>-<noun>-<4 digits>``, e.g. ``sft-brisk-otter-4821``."""
    rng = rng or random.SystemRandom()
    kind_part = _UNSAFE.sub("-", kind).strip("-") or "run"
    return f"{kind_part}-{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}-{rng.randrange(10_000):04d}"


def with_suffix(name: str, n: int) -> str:
    """The n-th alternative of a taken name: ``name-2``, ``name-3``, ..."""
    return f"{name}-{n}"
