"""Progress bars for long jobs, on stderr so that stdout stays parseable."""

from __future__ import annotations

import sys
from typing import Iterable, TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], total: int | None = None, desc: str = "") -> Iterable[T]:
    from tqdm import tqdm

    return tqdm(items, total=total, desc=desc, file=sys.stderr, mininterval=0.5, leave=False,
                dynamic_ncols=True, disable=None if sys.stderr.isatty() else False)
