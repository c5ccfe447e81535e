"""The words every layer shares: personalization modes and client outcomes.

Both are ``str`` enums, so they compare equal to, hash as, and serialize (JSON, YAML, Flower
records) as their plain values: ``Mode.TL == "tl"``.
"""

from __future__ import annotations

from enum import Enum


class Mode(str, Enum):
    """A personalization mode of the protocol (Craighero et al. 2023 §IV-B).

    * ``none``: the received general model, as is (No Pers.);
    * ``tl``: the last dense layers trained (transfer learning);
    * ``full``: every layer trained;
    * ``no_pretrain``: a random initialisation trained on every layer.
    """

    NONE = "none"
    TL = "tl"
    FULL = "full"
    NO_PRETRAIN = "no_pretrain"

    def __str__(self) -> str:
        return self.value

    @property
    def trains(self) -> bool:
        """True for the modes that run a training job on the device."""
        return self is not Mode.NONE


MODES: tuple[Mode, ...] = tuple(Mode)
"""Every mode, in report order."""

TRAINED_MODES: tuple[Mode, ...] = tuple(m for m in Mode if m.trains)
"""The modes that run a training job, in report order."""

PAPER_MODES: tuple[Mode, ...] = (Mode.NONE, Mode.TL, Mode.FULL)
"""The modes of Craighero et al. 2023, Table II (No Pers., TL, Full)."""

TRAINING_JOBS: tuple[Mode, ...] = (Mode.TL, Mode.FULL)
"""The jobs that train a received model on the device, lightest first (as Table III of
Craighero et al. 2023 lists them); the C library's trainable sets are named after them."""

WEARABLE_JOBS: tuple[Mode, ...] = tuple(reversed(TRAINING_JOBS))
"""The personalization jobs a battery-powered wearable chooses between, deepest first."""

WEARABLE_MODELS: tuple[Mode, ...] = (Mode.NONE, Mode.TL, Mode.FULL)
"""The models a wearable may hold: the general one, or the result of a TL or Full job."""


class Status(str, Enum):
    """A client's outcome in one round.

    * ``ok``: it replied with its figures;
    * ``declined``: it refused (does not fit its SRAM, or its policy), with its reason;
    * ``failed``: it raised or never replied;
    * ``rejected``: its reply held NaN or Inf, or named another user; the numbers are dropped;
    * ``skipped``: the server did not send it the round (its battery was low).
    """

    OK = "ok"
    DECLINED = "declined"
    FAILED = "failed"
    REJECTED = "rejected"
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value
