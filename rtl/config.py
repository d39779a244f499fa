"""Tunables of rtl/: where builds go and which environment variables the benches read.

``ONEBIT_RTL_BUILD`` overrides the build root; ``ONEBIT_RTL_WAVES=1`` asks for wave dumps of
failing verifications.
"""

import os
from pathlib import Path

__all__ = ["BUILD_ROOT", "REPO_ROOT", "WAVES_VARIABLE"]

REPO_ROOT = str(Path(__file__).resolve().parent.parent)
"""The checkout that holds rtl/, put on the simulator's PYTHONPATH."""

BUILD_ROOT = os.environ.get("ONEBIT_RTL_BUILD", str(Path(REPO_ROOT) / "build" / "rtl"))
"""Root of the per-parameter-set simulator builds (under the git-ignored build/)."""

WAVES_VARIABLE = "ONEBIT_RTL_WAVES"
"""Environment variable that turns on wave dumps for failing verifications."""
