"""MCU profiles (clock, SRAM, flash, cycle costs, power) and their calibration.

``load_profile("stm32l496")`` returns a frozen :class:`McuProfile` that turns operation counts
into cycles, seconds and joules; ``list_profiles()`` names the bundled profiles.
"""

from fedhar.mcu.profile import (
    OP_CLASSES,
    Cost,
    CycleCosts,
    McuProfile,
    OpCountsLike,
    list_profiles,
    load_profile,
    resolve_profile_name,
)
from fedhar.schema.mcu import BASES, Sourced

__all__ = [
    "BASES",
    "OP_CLASSES",
    "Cost",
    "CycleCosts",
    "McuProfile",
    "OpCountsLike",
    "Sourced",
    "list_profiles",
    "load_profile",
    "resolve_profile_name",
]
