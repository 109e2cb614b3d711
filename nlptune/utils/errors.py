"""The base of every error a user can cause. It lives in utils, the bottom layer, so that the file helpers
(utils/files.py) can raise user errors too; nlptune.config.errors re-exports it under the same name."""
from __future__ import annotations


class NlptuneError(Exception):
    """A problem the user can fix (config, data, command line); printed as one clear message, no traceback."""
