"""Rich output for the command line: progress bars for pipeline steps, summary tables."""

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True)


@contextlib.contextmanager
def rich_progress() -> Iterator:
    """A progress reporter for pipelines.progress.reporting: one bar per step."""
    with Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("[dim]{task.fields[detail]}"),
        console=console,
        transient=False,
    ) as progress:

        @contextlib.contextmanager
        def step(description: str, total: int):
            task = progress.add_task(description, total=total, detail="")
            yield lambda label="": progress.update(task, advance=1, detail=label[-60:])
            progress.update(task, detail="")

        yield step
