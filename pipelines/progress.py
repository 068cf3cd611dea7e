"""Progress of long work, shown by whoever runs it (the CLI draws rich progress bars).

>>> from pipelines.progress import step
>>> with step("files", total=2) as advance:
...     advance("a.csv"); advance("b.csv")
"""

import contextlib
import contextvars
from collections.abc import Callable, Iterator

Reporter = Callable[[str, int], contextlib.AbstractContextManager[Callable[[str], None]]]


def _ignore(label: str = "") -> None:
    """Progress nobody watches."""


@contextlib.contextmanager
def _silent(description: str, total: int) -> Iterator[Callable[[str], None]]:
    yield _ignore


_reporter: contextvars.ContextVar[Reporter] = contextvars.ContextVar("reporter", default=_silent)


def step(description: str, total: int):
    """A context manager yielding advance(label), one call per unit of work done."""
    return _reporter.get()(description, total)


@contextlib.contextmanager
def reporting(reporter: Reporter) -> Iterator[None]:
    """Show the progress of everything run inside the block with `reporter`."""
    token = _reporter.set(reporter)
    try:
        yield
    finally:
        _reporter.reset(token)
