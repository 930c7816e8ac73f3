"""``sanitize_url`` / ``sanitize_query``: strip the personal parts of a URL, keep its shape.

Strategy: the value is split by hand following RFC 3986's generic syntax
(``scheme://userinfo@host:port/path?query#fragment``) - ``urllib.parse`` guesses on
scheme-less and malformed input and rebuilds what it parsed, so it is used only to
percent-decode a path segment for classification. The rewrite is:

- userinfo (``user:password@``) is removed;
- every query parameter value becomes ``VALUE_PLACEHOLDER`` (``REDACTED``, the
  placeholder the OpenTelemetry semantic conventions use for ``url.query``); names
  stay, a bare ``?name`` stays, an empty value stays empty. Parameters are split on
  ``&`` only: splitting on ``;`` as well could turn part of a value into a kept name;
- a name that does not look like a parameter name (only ``A-Z a-z 0-9 _ . - ~ [ ] +``
  and ``%XX``, at most 64 characters, and not id-like) becomes ``REDACTED`` too, so
  ``?<token>`` or ``?john@example.com`` do not survive as "names";
- the fragment is removed;
- path parameters (``;jsessionid=...``) keep their names and lose their values;
- with ``path_ids=True``, path segments that look like identifiers become
  ``ID_PLACEHOLDER`` (``{id}``): all digits; a UUID; >= 16 hex digits; anything with
  an ``@`` (e-mail addresses); a token of >= 20 characters from the base64/base64url
  alphabet containing an upper-case letter, a lower-case letter and a digit.
  Classification looks at the percent-decoded segment. Slugs and lower-case-only
  tokens are not ids (``best-laptops-2024`` stays); dates and numeric versions that
  form a whole segment (``/2024/``) are.

Accepted shapes: absolute (``https://...``), network-path (``//host/p``), scheme-less
(``example.com/p``, ``host:8080/p``, ``user@host/p``), origin-form targets (``/p?q``),
relative paths, query-only values (``a=1&b=2``, ``?a=1``) and ``*``. A non-hierarchical
``scheme:rest`` (``mailto:``, ``tel:``, ``urn:``, ``data:``) keeps only the scheme:
``mailto:REDACTED``.

Fail closed: a control character anywhere, whitespace outside the query and fragment,
an unterminated ``[`` IPv6 host, a non-numeric port or a host with characters no host
can have returns ``URL_UNPARSEABLE`` - never the input.

``sanitize_span_name`` applies the same rules to a span name that is a URL: an absolute
or network-path URL (``https://...``, ``//host/p``), an origin-form target (``/p?q``)
or either after an HTTP method (``GET /users/42?email=a@b.c``, ``GET https://api/x``) -
the semantic conventions' ``{method} {target}`` shape, which the collector's
``url_sanitizer.sanitize_span_name`` rewrites. Any other name (``GET /users/{id}``
keeps its template, ``HTTP GET``, ``GET``, ``checkout``) is returned unchanged. A name
of that shape whose target cannot be parsed keeps only its method and the marker.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

__all__ = [
    "ID_PLACEHOLDER",
    "URL_UNPARSEABLE",
    "VALUE_PLACEHOLDER",
    "sanitize_query",
    "sanitize_span_name",
    "sanitize_url",
]

VALUE_PLACEHOLDER = "REDACTED"
ID_PLACEHOLDER = "{id}"
URL_UNPARSEABLE = "[unparseable url]"

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SPACE = re.compile(r"\s")
_PORT = re.compile(r"[0-9]*")
_LEADING_PORT = re.compile(r"[0-9]+(?=[/?#]|$)")
# A registered name: unreserved, sub-delims and %XX; non-ASCII (IDN) letters allowed.
_HOST = re.compile(r"(?:[\w\-.~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")
_IPV6_LITERAL = re.compile(r"\[[0-9A-Za-z:.%_~\-]+\]")
_PARAM_NAME = re.compile(r"(?:[A-Za-z0-9_.\-~\[\]+]|%[0-9A-Fa-f]{2}){1,64}")
# Schemes whose whole rest is payload even when it looks like "user@host".
_OPAQUE_SCHEMES = frozenset({"mailto", "tel", "sms", "sip", "sips", "urn", "data", "javascript", "magnet", "news"})

_ALL_DIGITS = re.compile(r"[0-9]+")
_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_LONG_HEX = re.compile(r"[0-9A-Fa-f]{16,}")
_TOKEN = re.compile(r"[A-Za-z0-9_\-+/=.~]{20,}")
# A prefixed id (`usr_plant0316`, `u-42`, `cus_8812`): a short word, one separator, and an
# alphanumeric tail with at least two digits ("api-v2", "v1" and slugs such as
# "best-laptops-2024" stay).
_PREFIXED_ID = re.compile(r"[A-Za-z]{1,12}[_-](?=(?:[A-Za-z]*[0-9]){2})[A-Za-z0-9]{2,64}")
_UPPER = re.compile(r"[A-Z]")
_LOWER = re.compile(r"[a-z]")
_DIGIT = re.compile(r"[0-9]")


# Span names: "{method} {target}" (RFC 9110 methods, WebDAV, semconv "_OTHER") or a bare URL.
_HTTP_METHODS = frozenset(
    {
        "GET",
        "HEAD",
        "POST",
        "PUT",
        "DELETE",
        "CONNECT",
        "OPTIONS",
        "TRACE",
        "PATCH",
        "QUERY",
        "_OTHER",
        "PROPFIND",
        "PROPPATCH",
        "MKCOL",
        "COPY",
        "MOVE",
        "LOCK",
        "UNLOCK",
        "SEARCH",
        "REPORT",
        "MKCALENDAR",
        "PURGE",
    }
)
_URL_NAME = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.\-]*:)?//|/")


class _Garbage(Exception):
    """Not a URL we can take apart; carries no text on purpose."""


def sanitize_url(value: str, path_ids: bool = False) -> str:
    """``value`` without userinfo, query values and fragment, or ``URL_UNPARSEABLE``."""
    if not isinstance(value, str):
        return URL_UNPARSEABLE
    try:
        return _sanitize(value, path_ids)
    except _Garbage:
        return URL_UNPARSEABLE


def sanitize_query(value: str) -> str:
    """A query string (``a=1&b``, leading ``?`` optional) with every value replaced.

    Never fails: whatever is not a parameter name is replaced as well.
    """
    if not isinstance(value, str):
        return URL_UNPARSEABLE
    if value.startswith("?"):
        return "?" + _query(value[1:])
    return _query(value)


def sanitize_span_name(name: str, path_ids: bool) -> str:
    """A span name that is a URL or ``METHOD url`` with the URL sanitized; else ``name``."""
    if not isinstance(name, str):
        return name
    method, space, target = name.partition(" ")
    if space and method in _HTTP_METHODS:
        if not _URL_NAME.match(target):
            return name
        out = method + " " + sanitize_url(target, path_ids=path_ids)
    elif _URL_NAME.match(name):
        out = sanitize_url(name, path_ids=path_ids)
    else:
        return name
    return name if out == name else out  # unchanged: the input itself


def _sanitize(value: str, path_ids: bool) -> str:
    if _CONTROL.search(value):
        raise _Garbage
    # Fragment first: it is dropped whatever it contains.
    head, _, _fragment = value.partition("#")
    rest, qmark, query = head.partition("?")
    new_query = qmark + _query(query) if qmark else ""
    scheme = _SCHEME.match(rest)
    if not scheme and not rest.startswith("/"):
        first = rest.partition("/")[0]
        if "=" in first or "&" in first:
            return _query(head)  # url.query-style value: "a=1&b=2" (spaces allowed)
    if _SPACE.search(rest):
        raise _Garbage
    if rest == "" or rest == "*":
        return rest + new_query

    prefix = ""
    authority = None
    path = rest
    if rest.startswith("//"):
        authority, path = _split_authority(rest[2:])
        prefix = "//"
    elif scheme:
        after = rest[scheme.end() :]
        if scheme.group()[:-1].lower() in _OPAQUE_SCHEMES:
            return scheme.group() + (VALUE_PLACEHOLDER if after else "")
        if after.startswith("//"):
            authority, path = _split_authority(after[2:])
            prefix = scheme.group() + "//"
        elif "@" in after.split("/", 1)[0] or _LEADING_PORT.match(after):
            authority, path = _split_authority(rest)  # user:pw@host/p, host:8080/p
        else:
            # Non-hierarchical (mailto:, tel:, urn:, data:): the whole rest is payload.
            return scheme.group() + (VALUE_PLACEHOLDER if after else "")
    elif not rest.startswith("/"):
        first, slash, _ = rest.partition("/")
        if "@" in first or ("." in first and slash) or first == "localhost":
            authority, path = _split_authority(rest)  # example.com/p, user@host
    out = prefix + (_authority(authority) if authority is not None else "")
    return out + _path(path, path_ids) + new_query


def _split_authority(text: str) -> tuple[str, str]:
    slash = text.find("/")
    return (text, "") if slash < 0 else (text[:slash], text[slash:])


def _authority(authority: str) -> str:
    hostport = authority.rpartition("@")[2]  # userinfo removed (RFC 3986: up to the last @)
    if hostport.startswith("["):
        literal = _IPV6_LITERAL.match(hostport)
        if literal is None:
            raise _Garbage
        host, port_part = literal.group(), hostport[literal.end() :]
        if port_part and not port_part.startswith(":"):
            raise _Garbage
    else:
        host, colon, port = hostport.partition(":")
        port_part = colon + port
        if _HOST.fullmatch(host) is None:
            raise _Garbage
    if port_part and _PORT.fullmatch(port_part[1:]) is None:
        raise _Garbage
    return host + port_part


def _path(path: str, path_ids: bool) -> str:
    if not path:
        return path
    if ";" not in path and not path_ids:
        return path
    return "/".join(_segment(segment, path_ids) for segment in path.split("/"))


def _segment(segment: str, path_ids: bool) -> str:
    name, semi, params = segment.partition(";")
    if path_ids and name and _is_id(name):
        name = ID_PLACEHOLDER
    if not semi:
        return name
    return name + ";" + ";".join(_param(p) for p in params.split(";"))


def _query(query: str) -> str:
    return "&".join(_param(part) for part in query.split("&"))


def _param(part: str) -> str:
    """``name=value`` -> ``name=REDACTED``; a bare or odd-looking name -> kept or REDACTED."""
    if part == "":
        return part
    name, eq, val = part.partition("=")
    if name and not _is_name(name):
        name = VALUE_PLACEHOLDER
    if not eq:
        return name
    return name + "=" + (VALUE_PLACEHOLDER if val else "")


def _is_name(name: str) -> bool:
    return _PARAM_NAME.fullmatch(name) is not None and not _is_id(name)


def _is_id(segment: str) -> bool:
    text = unquote(segment) if "%" in segment else segment
    if "@" in text:
        return True
    if _ALL_DIGITS.fullmatch(text) or _UUID.fullmatch(text) or _LONG_HEX.fullmatch(text):
        return True
    if _PREFIXED_ID.fullmatch(text):
        return True
    return bool(_TOKEN.fullmatch(text) and _UPPER.search(text) and _LOWER.search(text) and _DIGIT.search(text))
