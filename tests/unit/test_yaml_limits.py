"""Bounded YAML: every config, recipe and run config.yaml nlptune reads is refused, fast and with the file
named, when it is too big, expands too far through aliases, refers to itself or is malformed."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from nlptune.config.errors import ConfigError
from nlptune.config.safety import MAX_YAML_ALIASES, MAX_YAML_BYTES, safe_load_file, safe_load_text
from nlptune.recipes.format import load_recipe, read_recipe

BILLION_LAUGHS = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
    for prev, name in zip([None, *"abcdefgh"], "abcdefghi"))


def refused(call, *expected: str) -> str:
    with pytest.raises(ConfigError) as caught:
        call()
    message = str(caught.value)
    for text in expected:
        assert text in message, message
    return message


def test_billion_laughs_is_refused_in_well_under_a_second(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(BILLION_LAUGHS)
    start = time.perf_counter()
    refused(lambda: safe_load_file(path, recipe=False), str(path), "aliases expand to more than")
    refused(lambda: load_recipe(path), str(path), "aliases expand")
    assert time.perf_counter() - start < 0.5


def test_many_aliases_to_a_small_value_are_refused():
    text = "x: &x 1\nitems: [" + ", ".join(["*x"] * (MAX_YAML_ALIASES + 1)) + "]\n"
    refused(lambda: safe_load_text(text, "many.yaml"), "many.yaml", f"more than {MAX_YAML_ALIASES} alias")


def test_an_alias_inside_its_own_anchor_is_refused():
    refused(lambda: safe_load_text("a: &a [1, *a]\n", "loop.yaml"), "loop.yaml", "its own anchor")


def test_deep_nesting_is_refused_not_a_recursion_error():
    text = "[" * 5000 + "]" * 5000
    refused(lambda: safe_load_text(text, "deep.yaml"), "deep.yaml", "nested too deeply")


def test_ordinary_anchors_and_merge_keys_still_load():
    text = "base: &base {lr: 0.001, dropout: 0.1}\nlstm:\n  <<: *base\n  dropout: 0.3\nsame: *base\n"
    data = safe_load_text(text, "ok.yaml")
    assert data["lstm"] == {"lr": 0.001, "dropout": 0.3}
    assert data["same"] == {"lr": 0.001, "dropout": 0.1}


def test_oversize_file_is_refused_before_it_is_read(tmp_path, monkeypatch):
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:  # sparse: 50 MB on paper, nothing on disk
        handle.truncate(50_000_000)
    monkeypatch.setattr(Path, "read_text", lambda *a, **k: pytest.fail("the file was read"))
    message = refused(lambda: read_recipe(path), str(path), "50,000,000 bytes", f"{MAX_YAML_BYTES:,}")
    assert "recipe" in message
    refused(lambda: safe_load_file(path, recipe=False), str(path), "over the limit")


def test_oversize_text_is_refused():
    refused(lambda: safe_load_text("x: '" + "a" * MAX_YAML_BYTES + "'\n", "big.yaml"), "big.yaml", "over the limit")


def test_malformed_yaml_names_file_line_and_column(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("recipe:\n  name: x\nconfig: [\n  a: 1\n")
    refused(lambda: read_recipe(path), str(path), "not valid YAML at line", "column")


@pytest.mark.parametrize("make, expected", [
    (lambda p: p.mkdir(), "is a folder"),
    (lambda p: None, "No such file"),
    (lambda p: p.write_bytes(b"name: caf\xe9\n"), "not UTF-8"),
    (lambda p: p.write_bytes(b"\x00\x01\x02binary"), "a control character (#x0000) at line 1"),  # valid UTF-8
    (lambda p: p.write_bytes(b"recipe:\n  name: a\x07b\n"), "a control character (#x0007) at line 2"),
])
def test_unreadable_files_name_the_file(tmp_path, make, expected):
    path = tmp_path / "thing.yaml"
    make(path)
    refused(lambda: read_recipe(path), str(path), expected)
    refused(lambda: safe_load_file(path, recipe=False), str(path), expected)


def test_a_run_config_yaml_bomb_is_refused_by_the_run_reader(tmp_path):
    from nlptune.inference.run_reading import check_run

    (tmp_path / "config.yaml").write_text(BILLION_LAUGHS)
    refused(lambda: check_run(tmp_path, finished=False), "config.yaml", "aliases expand")
