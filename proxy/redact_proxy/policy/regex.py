"""RE2, configured once for every regex a policy brings.

Strategy: policy regexes (rule key patterns, drop conditions, mask detectors and user
``regexes:``) are compiled by RE2 alone, so matching is linear in the text and no policy can
be turned into a ReDoS. Every compile goes through ``options()``, so the choices below are
made in one place: RE2's own error log is off (a bad pattern is reported by us, located,
not by absl on stderr), and ``dot_nl`` is on where a pattern decides over attribute keys.
"""

from __future__ import annotations

import re2


def options(*, dot_nl: bool = False, max_mem: int | None = None) -> re2.Options:
    """RE2 options for policy regexes. ``max_mem``: bytes of program and DFA cache (RE2's
    default, 8 MiB, when None); ``dot_nl``: whether ``.`` also matches a newline."""
    opts = re2.Options()
    opts.log_errors = False
    opts.dot_nl = dot_nl
    if max_mem is not None:
        opts.max_mem = max_mem
    return opts


# `.` must match a newline too: otherwise a key like "http.request.header.x\ny" would slip
# past `http\.request\.header\..*` and be kept in clear.
_KEY_OPTIONS = options(dot_nl=True)


def compile_regex(pattern: str):
    """A key pattern or drop condition of a rule, compiled (``re2.error`` when invalid)."""
    return re2.compile(pattern, options=_KEY_OPTIONS)


def reason(exc: re2.error) -> str:
    """RE2's reason for refusing a pattern, as text (the wrapper gives bytes or str)."""
    arg = exc.args[0] if exc.args else exc
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
