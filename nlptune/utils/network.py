"""Is the Hugging Face hub usable from this process? Asked once, answered in about two seconds at most.

Without this, a library call that needs the hub on a machine without network retries for half a minute before
failing. `hub_status` says at once whether offline mode is set or the hub endpoint cannot be reached, so a
caller can fall back to the local cache only (`offline_hub`) and fail with a message that says what to do.

Standard library only; huggingface_hub is imported lazily and only for its endpoint and offline constants.
"""
from __future__ import annotations

import contextlib
import functools
import os
import socket
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = 2.0
_TRUE = {"1", "ON", "YES", "TRUE"}


@dataclass(frozen=True)
class HubStatus:
    reachable: bool
    reason: str  # why not, in words ("offline mode is on (HF_HUB_OFFLINE=1)", ...); "" when reachable


def offline_variable() -> str | None:
    """The ``NAME=value`` of the first offline switch that is on (environment or huggingface_hub), else None."""
    for name in OFFLINE_VARIABLES:
        value = os.environ.get(name, "")
        if value.strip().upper() in _TRUE:
            return f"{name}={value}"
    try:
        from huggingface_hub import constants
    except ImportError:
        return None
    return "HF_HUB_OFFLINE (set in huggingface_hub)" if getattr(constants, "HF_HUB_OFFLINE", False) else None


def hub_endpoint() -> str:
    """The hub URL the Hugging Face libraries use (``HF_ENDPOINT``, default https://huggingface.co)."""
    try:
        from huggingface_hub import constants

        return str(getattr(constants, "ENDPOINT", None) or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT)
    except ImportError:
        return os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT


def _connect_target(endpoint: str) -> tuple[str, int]:
    """The host and port a connection to ``endpoint`` really opens: the HTTPS proxy's when one applies."""
    url = urllib.parse.urlsplit(endpoint)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(url.scheme) or urllib.request.getproxies().get("all")
    if proxy and not urllib.request.proxy_bypass(host):
        proxy_url = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        return proxy_url.hostname or host, proxy_url.port or 8080
    return host, port


@functools.lru_cache(maxsize=8)
def _probe(host: str, port: int, timeout: float) -> str:
    """Why a TCP connection to host:port does not open within ``timeout`` seconds; "" when it does.
    Cached per target: the network is probed once per process.

    The connection runs in a daemon thread: name resolution has no timeout of its own in the socket module,
    and a hanging DNS server must not hold the caller longer than ``timeout``."""
    outcome: list[str] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append("")
        except OSError as err:
            outcome.append(f"cannot connect to {host}:{port} ({err.strerror or err})")

    worker = threading.Thread(target=connect, daemon=True, name="nlptune-hub-probe")
    worker.start()
    worker.join(timeout + 0.5)
    return outcome[0] if outcome else f"no answer from {host}:{port} within {timeout:g} s"


def hub_status(timeout: float = PROBE_TIMEOUT_S) -> HubStatus:
    """Whether the hub can be used now: offline mode is off and its endpoint (or proxy) accepts a connection.

    The network probe runs once per process and target; the offline switches are read on every call."""
    switch = offline_variable()
    if switch:
        return HubStatus(False, f"offline mode is on ({switch})")
    endpoint = hub_endpoint()
    host, port = _connect_target(endpoint)
    if not host:
        return HubStatus(False, f"the hub endpoint {endpoint!r} has no host name (HF_ENDPOINT)")
    problem = _probe(host, port, timeout)
    return HubStatus(not problem, f"the hub {endpoint} is unreachable: {problem}" if problem else "")


def forget_hub_probe() -> None:
    """Probe the network again on the next `hub_status` (e.g. after the network came back, or in tests)."""
    _probe.cache_clear()


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when the Hugging Face hub can be used now (see `hub_status`)."""
    return hub_status(timeout).reachable


@contextlib.contextmanager
def offline_hub():
    """Within the block, huggingface_hub, datasets and transformers use their local caches only and fail at
    once instead of retrying (the documented offline variables, plus the constants they already read at import).
    Everything is restored afterwards; import those libraries before the block so that they are."""
    import sys
    from unittest import mock

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.dict(os.environ, {name: "1" for name in OFFLINE_VARIABLES}))
        # a module imported inside the block reads the variables above; one imported before has copied them
        for module_name, attribute in (("huggingface_hub.constants", "HF_HUB_OFFLINE"),
                                       ("datasets.config", "HF_HUB_OFFLINE"),
                                       ("datasets.config", "HF_DATASETS_OFFLINE")):
            module = sys.modules.get(module_name)
            if module is not None and hasattr(module, attribute):
                stack.enter_context(mock.patch.object(module, attribute, True))
        yield


@contextlib.contextmanager
def hub_or_cache(name_or_path: str):
    """Around loading a model, tokenizer or config ``name_or_path`` with a Hugging Face library: a hub id while
    the hub is unusable (offline mode, or unreachable) is looked up in the local cache only, at once (a cached
    model loads; an uncached one fails in a second instead of after half a minute of retries). A local folder,
    or a reachable hub, is left to the library."""
    if os.path.isdir(name_or_path) or hub_status().reachable:
        yield
        return
    with offline_hub():
        yield

