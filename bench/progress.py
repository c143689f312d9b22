"""Progress bars on stderr, with one switch for the whole process (`--quiet`, or TQDM_DISABLE=1)."""
from __future__ import annotations

import os
import sys
from typing import Iterable, Optional

from tqdm.auto import tqdm

_enabled = os.environ.get("TQDM_DISABLE", "").lower() in ("", "0", "false")


def set_enabled(enabled: bool) -> None:
    """Turn every later progress bar of this process on or off."""
    global _enabled
    _enabled = bool(enabled)


def bar(iterable: Optional[Iterable] = None, *, show: bool = True, **kwargs) -> tqdm:
    """A tqdm bar on stderr; hidden when `show` is false or bars are switched off for the process."""
    return tqdm(iterable, disable=not (show and _enabled), file=sys.stderr, **kwargs)
