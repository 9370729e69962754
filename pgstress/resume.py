"""--resume: continue a ramp whose CSV already holds finished iterations.

`--resume` refuses unless the run record beside the CSV (output/run_record.py) matches the
current options and the CSV's rows are the ramp's first levels in order; it then runs the
remaining levels, appends them to the same CSV, and the report covers the whole ramp, reading
the earlier rows back from the CSV. Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pgstress.config import RunConfig
from pgstress.output.csv import CsvDamaged, read_rows
from pgstress.output.run_record import ramp_identity, read_identity, run_record_path
from pgstress.rows import Row


class ResumeRefused(Exception):
    """--resume cannot continue this CSV; the message is safe to print."""


@dataclass(frozen=True)
class Resumption:
    """The rows already measured, and the configuration that runs the rest of the ramp."""

    csv_path: Path
    previous: list[Row]
    runner_config: RunConfig
    csv_bytes: int | None = None  # set when the CSV's cut last line is to be dropped: the length to keep
    notice: str | None = None  # what the user is told before the run (a dropped line)

    @property
    def truncate_first(self) -> bool:
        """The table still holds the earlier run's last record; a ramp that truncates between iterations drops it."""
        return not self.runner_config.keep_data_between_iterations


def _option(name: str) -> str:
    return "server" if name == "server" else "--" + name.replace("_", "-")


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _recorded_ramp(record: Path) -> dict[str, Any]:
    try:
        return read_identity(record)
    except Exception as exc:  # noqa: BLE001 - whatever is wrong with it (JSON, shape, nesting), it is no run record
        detail = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise ResumeRefused(f"--resume: {record} is not a pgstress run record ({detail})") from None


def load_resumption(config: RunConfig, csv_path: str | Path, row_type: type[Row]) -> Resumption:
    """Check that `csv_path` holds the start of this very ramp; raise ResumeRefused otherwise.

    A CSV whose last line was cut off (written in part when a run died) is continued without that
    line, which is said in `notice`; any other damage refuses.
    """
    path = Path(csv_path)
    record = run_record_path(path)
    if not path.is_file():
        raise ResumeRefused(f"--resume: {path} does not exist, so there is nothing to resume")
    if not record.is_file():
        raise ResumeRefused(
            f"--resume: {record} is missing, so {path} cannot be checked to hold this same ramp (run without --resume)"
        )
    recorded = _recorded_ramp(record)
    differences = [
        f"{_option(name)} {_shown(recorded.get(name))} there, {_shown(value)} now"
        for name, value in ramp_identity(config).items() if recorded.get(name) != value
    ]
    if differences:
        raise ResumeRefused(f"--resume: {path} holds a different ramp: " + "; ".join(differences))

    try:
        contents = read_rows(path, row_type)
    except CsvDamaged as exc:
        raise ResumeRefused(f"--resume: {path} {exc}; refusing to continue it (run without --resume)") from None
    except OSError as exc:
        raise ResumeRefused(f"--resume: cannot read {path}: {exc.strerror or exc}") from None
    previous = contents.rows
    levels, repeat = config.epoch_ramp(), config.repeat
    done = [(row.iter, row.epochs, row.rep) for row in previous]
    sizes_begun = -(-len(done) // repeat)
    expected = [(i + 1, epochs, rep) for i, epochs in enumerate(levels[:sizes_begun]) for rep in range(1, repeat + 1)]
    if sizes_begun > len(levels) or done != expected[: len(done)]:
        shown = [step if repeat > 1 else step[:2] for step in done[:3]]
        wanted = [step if repeat > 1 else step[:2] for step in expected[:3]]
        raise ResumeRefused(
            f"--resume: the rows of {path} are not this ramp's first iterations in order"
            f" (found iter/epochs{'/rep' if repeat > 1 else ''} {shown}..., expected {wanted}...)"
        )
    next_size, reps_done = divmod(len(done), repeat)  # a size cut short is finished first, from its next rep
    notice = None
    if contents.cut_tail:
        notice = (f"--resume: the last line of {path} was cut off ({len(contents.cut_tail)} bytes without a line"
                  f" end); it is dropped, and the ramp goes on after iteration {next_size}"
                  + (f", repetition {reps_done}" if reps_done else ""))
    next_epochs = levels[next_size] if next_size < len(levels) else config.end_epochs + config.step_epochs
    return Resumption(path, previous, replace(config, start_epochs=next_epochs, start_iter=next_size + 1,
                                              start_rep=reps_done + 1),
                      csv_bytes=contents.whole_bytes if contents.cut_tail else None, notice=notice)
