"""The epoch shape a run draws, as a table: in the report, in `--show-template`'s output."""

from __future__ import annotations

from pgstress.config import ALL_FORMATS, RunConfig
from pgstress.output.tables import Column, markdown_table
from pgstress.workload.shape import EpochShape
from pgstress.workload.template import run_shape

_COLUMNS = (
    Column("key", lambda row: row[0]), Column("type", lambda row: row[1]), Column("range", lambda row: row[2]),
    Column("decimals", lambda row: row[3]), Column("null share", lambda row: row[4]),
)


def shape_table(shape: EpochShape) -> str:
    return markdown_table(shape.table_rows(), _COLUMNS)


def shape_text(shape: EpochShape) -> str:
    """What `--show-template` prints: the shape in words, then its table."""
    head = f"Epoch shape: {shape.describe()}."
    if shape.template_sha256:
        head += f"\nTemplate SHA-256: {shape.template_sha256}."
    return f"{head}\n\n{shape_table(shape)}\n"


def run_epoch_shape(config: RunConfig) -> EpochShape:
    return run_shape(config.float_decimals, config.epoch_template)


def shape_lines(config: RunConfig) -> list[str]:
    """The report's account of the data measured: the default shape in one line, any other with its table."""
    shape = run_epoch_shape(config)
    if shape.is_default and shape.float_decimals is None:
        return [f"Epoch shape: {shape.describe()}; `--float-decimals`, `--epoch-template` measure others.", ""]
    out = ["### Epoch shape", "", f"The epochs written: {shape.describe()}."]
    if shape.template_sha256:
        out[-1] += (f" Template SHA-256 `{shape.template_sha256[:16]}…`; every value is drawn fresh, none is the"
                    " sample's.")
    return [*out, "", shape_table(shape), ""]


def measured_on(config: RunConfig) -> str:
    """The sentence every recommendation carries: the data it holds for."""
    return f"Measured on {run_epoch_shape(config).describe()}; data of another shape can change the answer."


def shape_caveat(config: RunConfig) -> str:
    """When a comparison of encodings could come out otherwise on data of another shape (bench/results.md)."""
    shape = run_epoch_shape(config)
    full = shape.is_default and shape.float_decimals is None
    if config.payload_format != ALL_FORMATS:  # zstd levels only
        if full:
            return ("zstd's sizes depend on the text it compresses, and full-precision random floats are the worst"
                    " case: on 100,000 epochs of this generator, levels 1, 3 and 19 give 104, 126 and 90 bytes per"
                    " epoch at full precision, 44, 49 and 30 with the floats rounded to 4 decimals"
                    " (bench/results.md). Measure with --float-decimals N or --epoch-template FILE before choosing.")
        return ("zstd's sizes depend on the text it compresses: fewer decimals and repeated strings compress"
                " better, so these levels' sizes hold for data shaped like this run's, not for full-precision data.")
    if full:
        return ("Full-precision uniform random floats (17-19 characters each as JSON text) are the worst case for a"
                " text encoding and for compression. On records of 100,000 and 500,000 epochs of this generator,"
                " rounding the floats to 4 decimals took the stored bytes per epoch of ndjson_zstd from 126 to 49,"
                " of jsonb from 135 to 55 and of bson from 119 to 100, so ndjson_zstd, not bson, was then the"
                " smallest on disk (bench/results.md): if your metrics have few decimals, measure with"
                " --float-decimals N or --epoch-template FILE before choosing.")
    return ("bson sends every double in 8 bytes whatever its digits, while the text of jsonb and ndjson_zstd"
            " shrinks with fewer decimals: on full-precision floats (the default shape) the text formats are larger"
            " and compress worse, and bson was the smallest on disk there (bench/results.md), so this answer holds"
            " for data shaped like this run's, not for full-precision data.")
