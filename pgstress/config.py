"""The frozen run configuration: every option of one run, validated by cli.py."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from pgstress.redaction import redact_dsn
from pgstress.workload.payloads import format_names, stores_one_value

MEMORY_TRACE_MODES = ("auto", "on", "off")
AUTO_TRACE_ALL_UP_TO = 20  # --memory-trace auto traces every iteration of a ramp this short ...
AUTO_TRACE_SAMPLES = 5  # ... and about this many, evenly spread and ending with the last, of a longer one
ALL_FORMATS = "all"  # --payload-format all: one ramp per registered format, compared in one report
# insert: psycopg's own (non-blocking) send; insert_blocking: the same INSERT with libpq's blocking send; copy
WRITE_METHODS = ("insert", "insert_blocking", "copy")
# The default in sync mode: psycopg's non-blocking send of one huge parameter costs up to 4x the whole INSERT
# (bench/results.md, section I), a driver's cost rather than PostgreSQL's. asyncpg has no libpq send mode.
SYNC_WRITE_METHOD, ASYNC_WRITE_METHOD = "insert_blocking", "insert"
DEFAULT_WRITE_METHODS = {"sync": SYNC_WRITE_METHOD, "async": ASYNC_WRITE_METHOD}  # the CLI's, by mode
TOAST_COMPRESSIONS = ("default", "pglz", "lz4")  # the payload column's COMPRESSION; default: the server's setting
ALL_COMPRESSIONS = "all"  # --toast-compression all: one ramp per method below, compared in one report
COMPARED_COMPRESSIONS = ("pglz", "lz4")
STORAGES = ("extended", "external", "main")  # the payload column's STORAGE
VALUE_LAYOUT, CHUNKED_LAYOUT = "value", "chunked"  # one value per record; rows of --chunk-epochs epochs
LAYOUTS = (VALUE_LAYOUT, CHUNKED_LAYOUT)
ALL_LAYOUTS = "all"  # --layout all: one ramp per layout, each on its own table, compared in one report
DEFAULT_CHUNK_EPOCHS = 10_000
IDENTIFIER_MAX = 63  # PostgreSQL's identifier limit (NAMEDATALEN - 1 bytes)


@dataclass(frozen=True)
class RunConfig:
    mode: str = "sync"
    dsn: str | None = None
    table: str = "stress_records"
    payload_format: str = "ndjson_zstd"
    start_epochs: int = 10_000
    end_epochs: int = 1_000_000
    step_epochs: int = 10_000
    drop_table: bool = False
    truncate_before_start: bool = False
    keep_data_between_iterations: bool = False
    statement_timeout_ms: int = 0
    results_csv: str = "iteration_results.csv"
    async_concurrency: int = 10  # C of this ramp (with a sweep: the first C, and each ramp's own in ramp_configs)
    concurrency_sweep: tuple[int, ...] = ()  # --async-concurrency 1,4,16: one ramp per C, compared; (): one C
    async_results_csv: str = "async_fanout_results.csv"
    report_md: str = "stress_test_report.md"
    seed: int = 42
    zstd_level: int = 3  # ndjson_zstd's level of this ramp (a list: the first, and each ramp's own in ramp_configs)
    zstd_sweep: tuple[int, ...] = ()  # --zstd-level 1,3,19: one ndjson_zstd ramp per level, compared; (): one level
    float_decimals: int | None = None  # every float rounded to this many decimals; None: full precision
    epoch_template: str | None = None  # a sample of the user's epochs whose shape is drawn (workload/template.py)
    show_template: bool = False  # print the shape the run would draw and exit (not a run option)
    max_consecutive_failures: int = 3
    memory_trace: str = "auto"  # on: every iteration; off: none; auto: see trace_stride
    write_method: str = SYNC_WRITE_METHOD  # the CLI gives the mode's default (DEFAULT_WRITE_METHODS) unless asked
    toast_compression: str = "default"
    storage: str = "extended"
    repeat: int = 1  # measurements of each size, each of a fresh record from its own generator stream
    export_json: str | None = None  # the run's self-describing JSON record (output/json_export.py); None: none
    start_iter: int = 1
    start_rep: int = 1  # the repetition the first size starts at (--resume of a size cut short)
    resume: bool = False
    max_client_memory_mb: int | None = None  # async memory guard; None = 80 % of the RAM available at start
    no_charts: bool = False
    quiet: bool = False
    fail_on_break: bool = False
    # The access phases after each full read (run/access.py): "full" (the seed's run, nothing more) or a list
    # such as "range,metric"; their window, metric and appended epochs (None: 1 % of the record, at least 1).
    access: str = "full"
    range_epochs: int = 1_000
    metric: str = "HitRate"
    append_epochs: int | None = None
    standby_dsn: tuple[str, ...] = ()  # the user's streaming standbys of the server under test
    standby: str | None = None  # "embedded": a standby cloned from the embedded server
    synchronous_standby: bool = False  # the embedded standby made synchronous (remote_apply)
    layout: str = VALUE_LAYOUT  # value, chunked, or all (one ramp per layout)
    chunk_epochs: int = DEFAULT_CHUNK_EPOCHS  # epochs per row of the chunked layout
    # how long a level waits for each standby to show its write, in seconds (None: STANDBY_REPLAY_TIMEOUT_S)
    standby_replay_timeout: int | None = None

    def __post_init__(self) -> None:
        if self.mode == "async" and self.write_method == "insert_blocking":
            raise ValueError("insert_blocking is libpq's send mode (sync mode); async mode writes with insert or copy")

    @property
    def zstd_levels(self) -> tuple[int, ...]:
        """Every zstd level the run uses: the list's, or the one --zstd-level."""
        return self.zstd_sweep or (self.zstd_level,)

    @property
    def ramp_length(self) -> int:
        """Iterations of the whole ramp, also when this config runs only its tail (--resume)."""
        return self.start_iter - 1 + len(self.epoch_ramp())

    @property
    def trace_stride(self) -> int:
        """Trace every n-th iteration (and the last); 0 = never.

        The traced pass costs 3-4x the timed client work, so on a long ramp `auto` samples it: every
        iteration up to AUTO_TRACE_ALL_UP_TO, else about AUTO_TRACE_SAMPLES of them (~20 % more run time).
        """
        if self.memory_trace == "off":
            return 0
        if self.memory_trace == "on" or self.ramp_length <= AUTO_TRACE_ALL_UP_TO:
            return 1
        return math.ceil(self.ramp_length / AUTO_TRACE_SAMPLES)

    def traces_memory(self, iteration: int) -> bool:
        stride = self.trace_stride
        return stride > 0 and (iteration % stride == 0 or iteration == self.ramp_length)

    def sampled_iterations(self) -> list[int]:
        """The iterations `--memory-trace auto` traces on a long ramp (empty when it traces all or none)."""
        stride, n = self.trace_stride, self.ramp_length
        if stride <= 1:
            return []
        return sorted({*range(stride, n + 1, stride), n})

    def epoch_ramp(self) -> range:
        """The linear ramp start, start+step, ... <= end (a range: never built as a list)."""
        return range(self.start_epochs, self.end_epochs + 1, self.step_epochs)

    def as_public_dict(self) -> dict[str, object]:
        """Every option as given, with the DSN's password removed (a sweep is the list --async-concurrency got;
        not where a resumed ramp starts: no option sets it)."""
        values = asdict(self)
        values["dsn"] = redact_dsn(self.dsn) if self.dsn else None
        values["standby_dsn"] = [redact_dsn(dsn) for dsn in self.standby_dsn]
        for name in STANDBY_OPTIONS:  # shown only when given: a run without standbys describes itself as before
            if not values[name]:
                del values[name]
        if not has_layouts(self):  # the same: a run of the value layout alone describes itself as before
            for name in LAYOUT_OPTIONS:
                del values[name]
        if self.concurrency_sweep:
            values["async_concurrency"] = concurrency_text(self)
        if self.zstd_sweep:
            values["zstd_level"] = ",".join(map(str, self.zstd_sweep))
        del values["concurrency_sweep"], values["zstd_sweep"]
        for name in (*RESUME_POSITION, "show_template"):
            del values[name]
        return values


STANDBY_OPTIONS = ("standby_dsn", "standby", "synchronous_standby", "standby_replay_timeout")
STANDBY_REPLAY_TIMEOUT_S = 60  # a standby that has not shown a level's write this long after its commit is TIMEOUT
LAYOUT_OPTIONS = ("layout", "chunk_epochs")
RESUME_POSITION = ("start_iter", "start_rep")  # where a resumed ramp starts: set by --resume, not an option


def concurrencies(config: RunConfig) -> tuple[int, ...]:
    """Every C the run uses: the sweep's, or the one --async-concurrency."""
    return config.concurrency_sweep or (config.async_concurrency,)


def concurrency_text(config: RunConfig) -> str:
    """How --async-concurrency was given: "10", or a sweep's "1,4,16"."""
    return ",".join(map(str, concurrencies(config)))


ZSTD_FORMAT = "ndjson_zstd"  # the format --zstd-level applies to


def ramp_configs(config: RunConfig) -> list[RunConfig]:
    """One configuration per ramp: `--payload-format all` runs one per format, `--toast-compression all` one per
    method, a concurrency sweep one per C, a list of zstd levels one ndjson_zstd ramp per level, together one per
    combination; each on its own table `<table>_<format>_<method>_z<level>_c<C>` (only the parts that vary).
    A compared format that is not one value (pgarrays) has no chunked ramp (see `unchunked_formats`).
    """
    formats = list(format_names()) if config.payload_format == ALL_FORMATS else [config.payload_format]
    methods = list(COMPARED_COMPRESSIONS) if config.toast_compression == ALL_COMPRESSIONS \
        else [config.toast_compression]
    layouts = list(LAYOUTS) if config.layout == ALL_LAYOUTS else [config.layout]
    sweep, levels = config.concurrency_sweep, config.zstd_sweep
    if len(formats) == 1 and len(methods) == 1 and len(layouts) == 1 and not sweep and not levels:
        return [config]
    return [replace(config, payload_format=name, toast_compression=method, async_concurrency=c, concurrency_sweep=(),
                    zstd_level=level, zstd_sweep=(), layout=layout,
                    table=config.table + _suffix(name if len(formats) > 1 else None,
                                                 method if len(methods) > 1 else None, c if sweep else None,
                                                 level if levels and name == ZSTD_FORMAT else None,
                                                 layout if len(layouts) > 1 else None))
            for name in formats for layout in layouts if layout != CHUNKED_LAYOUT or stores_one_value(name)
            for method in methods
            for level in (levels if levels and name == ZSTD_FORMAT else (config.zstd_level,))
            for c in (sweep or (config.async_concurrency,))]


def unchunked_formats(config: RunConfig) -> list[str]:
    """The formats a run compares across layouts (--layout all) that the chunked layout cannot store: they run in
    the value layout only."""
    if config.layout != ALL_LAYOUTS:
        return []
    formats = list(format_names()) if config.payload_format == ALL_FORMATS else [config.payload_format]
    return [name for name in formats if not stores_one_value(name)]


def zstd_level_of(config: RunConfig) -> int | None:
    """The zstd level a ramp's rows record: its level when it writes ndjson_zstd, else none."""
    return config.zstd_level if config.payload_format == ZSTD_FORMAT else None


def _suffix(payload_format: str | None, method: str | None, concurrency: int | None = None,
            zstd_level: int | None = None, layout: str | None = None) -> str:
    c = f"c{concurrency}" if concurrency is not None else None
    z = f"z{zstd_level}" if zstd_level is not None else None
    return "".join(f"_{part}" for part in (payload_format, layout, method, z, c) if part)


def longest_table_suffix(config: RunConfig) -> int:
    """How many characters `ramp_configs` appends to `--table` at most (0 when it runs one ramp)."""
    return max(len(ramp.table) for ramp in ramp_configs(config)) - len(config.table)


def ramp_label(whole: RunConfig, ramp: RunConfig) -> str:
    """How the reports name one ramp of a compared run: what varies between its ramps ("bson lz4 C=4"); empty
    alone."""
    parts = [ramp.payload_format if whole.payload_format == ALL_FORMATS else "",
             ramp.toast_compression if whole.toast_compression == ALL_COMPRESSIONS else "",
             f"zstd {ramp.zstd_level}" if whole.zstd_sweep and ramp.payload_format == ZSTD_FORMAT else "",
             f"C={ramp.async_concurrency}" if whole.concurrency_sweep else "",
             ramp.layout if whole.layout == ALL_LAYOUTS else ""]
    return " ".join(part for part in parts if part)


def compared_noun(config: RunConfig) -> str:
    """What one ramp of a compared run is: a format, a compression method, a concurrency, or a combination."""
    varied = [noun for noun, varies in (("format", config.payload_format == ALL_FORMATS),
                                        ("compression method", config.toast_compression == ALL_COMPRESSIONS),
                                        ("zstd level", bool(config.zstd_sweep)),
                                        ("layout", config.layout == ALL_LAYOUTS),
                                        ("concurrency", bool(config.concurrency_sweep))) if varies]
    return varied[0] if len(varied) == 1 else "combination" if varied else "ramp"


def is_compared(config: RunConfig) -> bool:
    """Whether the run compares several ramps (`all` for the format or the compression, a sweep over C, a list of
    zstd levels)."""
    return (config.payload_format == ALL_FORMATS or config.toast_compression == ALL_COMPRESSIONS
            or bool(config.concurrency_sweep) or bool(config.zstd_sweep) or config.layout == ALL_LAYOUTS)


def has_layouts(config: RunConfig) -> bool:
    """Whether the run asks for a layout other than one value per record (the layout columns are then in the
    CSV)."""
    return config.layout != VALUE_LAYOUT


def has_standbys(config: RunConfig) -> bool:
    """Whether the run measures standbys (their columns are then in the CSV)."""
    return bool(config.standby_dsn) or config.standby is not None


def replay_timeout(config: RunConfig) -> int:
    """How long a level waits for each standby to show its write, in seconds."""
    return config.standby_replay_timeout or STANDBY_REPLAY_TIMEOUT_S


def data_connections(config: RunConfig) -> int:
    """The data connections a run holds open at once: async mode's pool of C (the largest C of a sweep), else
    one."""
    return max(concurrencies(config)) if config.mode == "async" else 1
