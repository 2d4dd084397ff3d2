"""Progress bars for long jobs, on stderr so that stdout stays parseable."""

from __future__ import annotations

import sys
from typing import Iterable, TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], total: int | None = None, desc: str = "") -> Iterable[T]:
    from tqdm import tqdm

    return tqdm(items, total=total, desc=desc, file=sys.stderr, mininterval=0.5, leave=False,
                dynamic_ncols=True, disable=None if sys.stderr.isatty() else False)


def warn(message: str) -> None:
    """`warning: MESSAGE` on stderr, on its own line above any progress bar running (a plain
    print would land in the middle of the bar's line)."""
    from tqdm import tqdm

    tqdm.write(f"warning: {message}", file=sys.stderr)


def warn_some(messages: list[str], more: str, shown: int = 10) -> None:
    """The first `shown` of `messages` as warnings, then one that counts the others (`more`,
    formatted with their count): a folder of thousands of photos (LFW's 13233) stays one
    screen of warnings."""
    for message in messages[:shown]:
        warn(message)
    if len(messages) > shown:
        warn(more.format(len(messages) - shown))
