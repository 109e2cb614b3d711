"""Settings the training process applies for speed and memory: mixed precision `auto`, the allocator, oneDNN."""
from __future__ import annotations

import platform
import subprocess
import sys

import pytest
import torch

from nlptune.config.compose import load_run_config
from nlptune.train.precision import cpu_precision, resolve_precision


@pytest.mark.parametrize("amx, cpu, expected", [(True, True, "bf16"), (False, True, "no"), (True, False, "no")])
def test_auto_precision_is_bf16_only_on_cpus_with_amx(monkeypatch, amx, cpu, expected):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    assert resolve_precision("auto", cpu=cpu) == expected


def test_auto_precision_without_the_probe_is_fp32(monkeypatch):
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    assert resolve_precision("auto", cpu=True) == "no"


@pytest.mark.parametrize("requested", ["no", "bf16", "fp16"])
def test_explicit_precision_is_kept(requested):
    assert resolve_precision(requested, cpu=True) == requested


@pytest.mark.parametrize("requested, amx, expected", [("auto", True, "bf16"), ("auto", False, "fp32"),
                                                      ("bf16", False, "bf16"), ("fp16", True, "fp32"),
                                                      ("no", True, "fp32")])
def test_what_a_cpu_evaluates_a_run_in(monkeypatch, requested, amx, expected):
    """eval, predict and the cost measure compute a run on a CPU in bf16 autocast or fp32 (Accelerate runs fp16 in
    fp32 there)."""
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    assert cpu_precision(requested) == expected


def test_pretrained_models_default_to_auto_and_scratch_ones_to_fp32():
    assert load_run_config(["model=pretrained"]).trainer.mixed_precision == "auto"
    assert load_run_config(["model=lstm"]).trainer.mixed_precision == "no"
    assert load_run_config(["model=pretrained", "trainer.mixed_precision=no"]).trainer.mixed_precision == "no"


def _in_fresh_process(code: str, env: dict) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return proc.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_heap_setting_is_applied_unless_the_user_set_one(monkeypatch):
    code = "from nlptune.utils.memory import limit_heap_fragmentation as f; print(f())"
    base = {"PATH": "/usr/bin:/bin"}
    assert _in_fresh_process(code, base) == "True"
    assert _in_fresh_process(code, {**base, "MALLOC_MMAP_THRESHOLD_": "131072"}) == "False"


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc_trim")
def test_free_heap_pages_are_given_back_before_an_evaluation():
    # 64 MB in 64 KiB blocks (under the mmap threshold: on the heap), every other block freed so the free space
    # lies between live blocks, where the heap's own trimming of its top never reaches it
    code = """
import ctypes, resource
from nlptune.utils.memory import release_free_heap
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()
blocks = [ctypes.create_string_buffer(64 * 1024) for _ in range(1024)]
for block in blocks:
    ctypes.memset(block, 1, len(block))
del blocks[::2]
before = rss()
released = release_free_heap()
print(released, (before - rss()) // 2**20)
"""
    released, freed_mb = _in_fresh_process(code, {"PATH": "/usr/bin:/bin"}).split()
    assert released == "True" and int(freed_mb) >= 24  # about the 32 MB freed between the blocks still held


def test_mapped_pages_are_given_back_and_read_again_from_the_file(tmp_path):
    import numpy as np

    from nlptune.utils.memory import MappedPages

    data = np.arange(1 << 20, dtype=np.int32)  # 4 MiB: whole pages inside
    (tmp_path / "ids.bin").write_bytes(data.tobytes())
    mapped = np.memmap(tmp_path / "ids.bin", dtype=np.int32, mode="r")
    assert int(mapped.sum()) == int(data.sum())  # every page read in
    pages = MappedPages(tmp_path)
    if sys.platform.startswith("linux"):
        assert pages.ranges
    pages.release(mapped.ctypes.data, mapped.nbytes)
    assert np.array_equal(mapped, data)  # read back from the file


def test_mapped_pages_never_touch_memory_outside_the_folders_files(tmp_path):
    import numpy as np

    from nlptune.utils.memory import MappedPages

    (tmp_path / "other.bin").write_bytes(b"x" * (1 << 16))
    other = np.memmap(tmp_path / "other.bin", dtype=np.uint8, mode="r")
    anonymous = np.arange(1 << 20, dtype=np.int64)  # the process's own memory: a release there would zero it
    pages = MappedPages(tmp_path / "elsewhere")  # a folder with no mapped file: nothing to release
    assert pages.ranges == []
    pages.release(anonymous.ctypes.data, anonymous.nbytes)
    scoped = MappedPages(tmp_path)  # the folder's file is mapped, the array is not in it
    scoped.release(anonymous.ctypes.data, anonymous.nbytes)
    assert np.array_equal(anonymous, np.arange(1 << 20, dtype=np.int64))
    assert int(other[0]) == ord("x")
    (tmp_path / "written.bin").write_bytes(bytes(1 << 16))
    written = np.memmap(tmp_path / "written.bin", dtype=np.uint8, mode="c")  # private and writable
    written[:] = 7  # a copy-on-write change only this process holds
    MappedPages(tmp_path).release(written.ctypes.data, written.nbytes)
    assert int(written.min()) == 7  # never dropped: only read-only mappings are


def test_deterministic_kernels_are_switched_on_and_off_and_a_warn_only_mode_is_reset():
    """trainer.deterministic: set_deterministic calls torch only on a change (the call imports torch's compiler
    stack), and every state it can meet ends where it was asked to."""
    from nlptune.utils.seeding import set_deterministic

    try:
        for before, warn_only, enabled in ((False, False, True), (True, False, False), (True, True, True),
                                           (True, True, False), (False, False, False)):
            torch.use_deterministic_algorithms(before, warn_only=warn_only)
            set_deterministic(enabled)
            assert torch.are_deterministic_algorithms_enabled() is enabled
            assert not torch.is_deterministic_algorithms_warn_only_enabled()
            assert torch.backends.cudnn.deterministic is enabled
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False


@pytest.mark.parametrize("machine, amx, avx512_bf16, emulated", [
    ("x86_64", False, False, True), ("x86_64", True, False, False), ("x86_64", False, True, False),
    ("AMD64", False, False, True), ("aarch64", False, False, False)])
def test_which_cpus_emulate_bf16(monkeypatch, machine, amx, avx512_bf16, emulated):
    """x86 CPUs without AMX tiles or AVX-512 BF16 emulate bf16 autocast; other architectures are not judged."""
    from nlptune.train import precision

    monkeypatch.setattr(precision.platform, "machine", lambda: machine)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    assert precision.emulates_bf16() is emulated
