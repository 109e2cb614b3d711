"""`nlptune predict --output` in the format its name says: csv/tsv flatten nested values into columns and hold
lists as JSON, parquet keeps the structure, any other name is jsonl; each may be compressed."""
from __future__ import annotations

import csv
import gzip
import json

import pyarrow.parquet as pq

from nlptune.inference.writing import output_format, write_predictions

TEXTS = [["a, \"quoted\" text", "ünïcode\ttab"]]
SINGLE = [{"label": "pos", "score": 0.9, "probabilities": {"neg": 0.1, "pos": 0.9}},
          {"label": "neg", "score": 0.6, "probabilities": {"neg": 0.6, "pos": 0.4}}]
MULTI = [{"labels": ["joy", "love"], "scores": {"joy": 0.8, "love": 0.7}}, {"labels": [], "scores": {"joy": 0.1,
                                                                                                 "love": 0.2}}]


def test_the_name_picks_the_format():
    assert [output_format(name) for name in ("p.csv", "p.TSV.gz", "p.parquet", "p.jsonl", "p.json", "p.txt", "p")] \
        == ["csv", "tsv", "parquet", "jsonl", "jsonl", "jsonl", "jsonl"]


def test_csv_and_tsv_spread_mappings_into_columns_and_keep_lists_as_json(tmp_path):
    write_predictions(str(tmp_path / "p.csv"), TEXTS, ["text"], SINGLE)
    with open(tmp_path / "p.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["text", "label", "score", "probabilities.neg", "probabilities.pos"]
    assert rows[0]["text"] == TEXTS[0][0] and rows[1]["text"] == TEXTS[0][1]  # quotes, commas and tabs survive
    assert float(rows[1]["probabilities.neg"]) == 0.6 and rows[1]["label"] == "neg"
    write_predictions(str(tmp_path / "m.tsv.gz"), TEXTS, ["text"], MULTI)
    with gzip.open(tmp_path / "m.tsv.gz", "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert json.loads(rows[0]["labels"]) == ["joy", "love"] and json.loads(rows[1]["labels"]) == []
    assert float(rows[0]["scores.love"]) == 0.7 and rows[1]["text"] == TEXTS[0][1]


def test_parquet_keeps_the_structure_and_other_names_are_jsonl(tmp_path):
    write_predictions(str(tmp_path / "m.parquet"), TEXTS, ["text"], MULTI)
    rows = pq.read_table(tmp_path / "m.parquet").to_pylist()
    assert rows == [{"text": TEXTS[0][i], **MULTI[i]} for i in range(2)]
    write_predictions(str(tmp_path / "p.txt"), TEXTS, ["text"], SINGLE)
    lines = (tmp_path / "p.txt").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [{"text": TEXTS[0][i], **SINGLE[i]} for i in range(2)]
