"""The one sentence every report says where successful iterations lack a tracemalloc peak: which ones, why,
and how to get them."""

from __future__ import annotations

from collections.abc import Sequence

from pgstress.config import AUTO_TRACE_ALL_UP_TO, RunConfig
from pgstress.output.memory_pass import levels_text
from pgstress.rows import OK, Row

HOW = "`--memory-trace on` takes the peaks of every iteration"


def missing_peaks_sentence(config: RunConfig, rows: Sequence[Row]) -> str | None:
    """None when every successful iteration of the ramp has both peaks (a failed one may lack them for its
    failure, which its row says)."""
    missing = sorted({row.iter for row in rows
                      if row.status == OK and (row.write_peak_mb is None or row.read_peak_mb is None)})
    if not missing:
        return None
    which = (f"Iteration {levels_text(missing)} has" if len(missing) == 1 else
             f"Iterations {levels_text(missing)} have")
    if config.memory_trace == "off":
        why = "`--memory-trace off` takes no memory pass"
    else:
        unplanned = [level for level in missing if not config.traces_memory(level)]
        planned = [level for level in missing if config.traces_memory(level)]
        reasons = []
        if unplanned:
            reasons.append(f"on a ramp of more than {AUTO_TRACE_ALL_UP_TO} iterations `--memory-trace auto` plans the"
                           f" memory pass only for every {config.trace_stride}th and the last")
        if planned and config.memory_trace == "auto":
            reasons.append(f"`--memory-trace auto` skipped the memory passes of {levels_text(planned)} to stay within"
                           " its budget of the ramp's time")
        elif planned:
            reasons.append(f"{levels_text(planned)} {'was' if len(planned) == 1 else 'were'} measured without the"
                           " pass by an earlier run (--resume)")
        why = " and ".join(reasons)
    return f"{which} no tracemalloc peak (`write_peak_mb` or `read_peak_mb` empty): {why}; {HOW}."
