"""Writing `nlptune predict --output`: one row per input, in the format the file name says.

- ``.csv`` / ``.tsv``: a header, then one line per input: the text column(s), then the prediction flattened, a
  nested mapping becoming one column per key (``probabilities.positive``), a list (a multi-label row's labels, a
  tagger's words and tags) a JSON array in its cell, as spreadsheets and ``pandas.read_csv`` take it;
- ``.parquet``: one row per input with the prediction's structure kept (mappings as structs, lists as lists);
- anything else (``.jsonl``, the default): one JSON object per line.

Each may be compressed (``out.csv.gz``, ``out.jsonl.xz``). The file is written whole, atomically, never through a
link (`nlptune.utils.files.atomic_write_bytes`).
"""
from __future__ import annotations

import csv
import io
import json

from nlptune.data.compression import compress, data_suffix

TABLE_DELIMITERS = {"csv": ",", "tsv": "\t"}


def output_format(path: str) -> str:
    """How predictions are written to ``path``: "csv", "tsv", "parquet" or "jsonl" (any other name)."""
    name = data_suffix(path).lstrip(".")
    return name if name in (*TABLE_DELIMITERS, "parquet") else "jsonl"


def write_predictions(path: str, texts: list[list], fields: list[str], predictions: list[dict]) -> None:
    """Write each input's text field(s) and prediction to ``path`` in its `output_format`, compressed when the
    name says so."""
    from nlptune.utils.files import atomic_write_bytes

    rows = [{**{field: texts[j][i] for j, field in enumerate(fields)}, **prediction}
            for i, prediction in enumerate(predictions)]
    written = output_format(path)
    if written in TABLE_DELIMITERS:
        data = _table(rows, TABLE_DELIMITERS[written]).encode("utf-8")
    elif written == "parquet":
        data = _parquet(rows)
    else:
        data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
    atomic_write_bytes(path, compress(data, path))


def flatten(row: dict, prefix: str = "") -> dict:
    """``row`` with every nested mapping spread into ``parent.key`` columns and every list as its JSON text."""
    flat = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = json.dumps(value, ensure_ascii=False)
        else:
            flat[name] = value
    return flat


def _table(rows: list[dict], delimiter: str) -> str:
    """CSV/TSV text of the flattened ``rows``: the columns of all rows, in the order they first appear."""
    flat = [flatten(row) for row in rows]
    columns = list(dict.fromkeys(name for row in flat for name in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, delimiter=delimiter, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return out.getvalue()


def _parquet(rows: list[dict]) -> bytes:
    """Parquet bytes of ``rows`` (pyarrow, which datasets installs, infers the nested types)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()
