"""Progress bars for long jobs, on stderr so that stdout stays parseable."""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
SHOWN_EVERY = 0.5  # seconds between two refreshes of a bar, as tqdm's mininterval
_reading = threading.local()  # where this thread shows how far its item has got


def progress(items: Iterable[T], total: int | None = None, desc: str = "") -> Iterable[T]:
    from tqdm import tqdm

    return tqdm(items, total=total, desc=desc, file=sys.stderr, mininterval=SHOWN_EVERY,
                leave=False, dynamic_ncols=True,
                disable=None if sys.stderr.isatty() else False)


def report_part(what: str, done: int, total: int) -> None:
    """How far the item this thread reads has got, where one item is long (a PanNuke fold's
    2,656 images in one file, a CT volume's slices): shown after its bar as "what done/total"
    (parts_shown); nothing where the thread reads for no bar."""
    show = getattr(_reading, "show", None)
    if show is not None and total > 1:
        show(f"{what} {done}/{total}")


@contextmanager
def parts_shown(bar) -> Iterator[None]:
    """report_part's calls in this thread show after `bar` while the block runs, and are
    cleared after it."""
    last = [0.0]

    def show(text: str) -> None:
        if time.monotonic() - last[0] >= SHOWN_EVERY:
            last[0] = time.monotonic()
            bar.set_postfix_str(text)

    _reading.show = show
    try:
        yield
    finally:
        _reading.show = None
        if last[0]:
            bar.set_postfix_str("", refresh=False)


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
