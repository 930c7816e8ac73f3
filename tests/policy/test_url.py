"""sanitize_url / sanitize_query (redact_proxy.policy.url)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redact_proxy.policy.url import (
    ID_PLACEHOLDER, URL_UNPARSEABLE, VALUE_PLACEHOLDER, sanitize_query, sanitize_span_name,
    sanitize_url,
)


def test_constants():
    assert VALUE_PLACEHOLDER == "REDACTED"
    assert ID_PLACEHOLDER == "{id}"
    assert URL_UNPARSEABLE == "[unparseable url]"


@pytest.mark.parametrize("value,expected", [
    # absolute
    ("https://user:pw@example.com:8443/a/b?x=1&y=&z#frag",
     "https://example.com:8443/a/b?x=REDACTED&y=&z"),
    ("https://example.com", "https://example.com"),
    ("https://example.com/", "https://example.com/"),
    ("http://alice@example.com/p", "http://example.com/p"),
    ("http://a%40b:p%3Ass@example.com/", "http://example.com/"),
    ("https://shop.example/cart?item=42&coupon=SAVE10&email=bob%40example.com",
     "https://shop.example/cart?item=REDACTED&coupon=REDACTED&email=REDACTED"),
    ("https://example.com/search?q=hello+world&q=again", "https://example.com/search?q=REDACTED&q=REDACTED"),
    ("https://example.com/p?redirect=https://evil.example/?a=1&b=2",
     "https://example.com/p?redirect=REDACTED&b=REDACTED"),
    ("https://example.com/p?filter%5Bname%5D=bob&page[size]=10",
     "https://example.com/p?filter%5Bname%5D=REDACTED&page[size]=REDACTED"),
    ("https://example.com/p?a=1;b=2", "https://example.com/p?a=REDACTED"),
    ("https://example.com/p?", "https://example.com/p?"),
    ("https://example.com/p#only-fragment", "https://example.com/p"),
    ("ftp://files.example.org/pub/file.txt", "ftp://files.example.org/pub/file.txt"),
    # IPv6 and ports
    ("http://[2001:db8::1]:8080/p?a=b", "http://[2001:db8::1]:8080/p?a=REDACTED"),
    ("http://[fe80::1%25eth0]/", "http://[fe80::1%25eth0]/"),
    ("http://u:p@[::1]/x", "http://[::1]/x"),
    ("http://127.0.0.1:9090/metrics", "http://127.0.0.1:9090/metrics"),
    ("http://example.com:/p", "http://example.com:/p"),
    # relative / origin-form targets (http.target, url.path)
    ("/p?q=1", "/p?q=REDACTED"),
    ("/p?flag&q=1", "/p?flag&q=REDACTED"),
    ("/api/v1/users", "/api/v1/users"),
    ("/", "/"),
    ("*", "*"),
    ("", ""),
    ("users/123?x=1", "users/123?x=REDACTED"),
    ("?a=1", "?a=REDACTED"),
    ("//cdn.example.com/lib.js?v=3", "//cdn.example.com/lib.js?v=REDACTED"),
    # scheme-less
    ("example.com/p?token=abc", "example.com/p?token=REDACTED"),
    ("localhost:8080/x?a=1", "localhost:8080/x?a=REDACTED"),
    ("example.com:443", "example.com:443"),
    ("user:pw@host.example/p", "host.example/p"),
    # query-only values (url.query)
    ("a=1&b=2", "a=REDACTED&b=REDACTED"),
    ("a=1&next=/x/y", "a=REDACTED&next=REDACTED"),
    ("flag", "flag"),
    ("q=hello world&lang=en", "q=REDACTED&lang=REDACTED"),
    # names that are not names
    ("/p?john@example.com", "/p?REDACTED"),
    ("/reset?Ab3dE5fG7hJ9kL1mN3pQ5rS", "/reset?REDACTED"),
    ("/p?123456=x", "/p?REDACTED=REDACTED"),
    ("/p?" + "n" * 65, "/p?REDACTED"),
    # path parameters
    ("/app;jsessionid=ABC123DEF?x=1", "/app;jsessionid=REDACTED?x=REDACTED"),
    ("/a;v=1;flag/b", "/a;v=REDACTED;flag/b"),
    # non-hierarchical schemes keep only the scheme
    ("mailto:john@example.com", "mailto:REDACTED"),
    ("tel:+14155552671", "tel:REDACTED"),
    ("urn:isbn:0451450523", "urn:REDACTED"),
    ("data:text/plain;base64,SGVsbG8=", "data:REDACTED"),
    # internationalised
    ("https://例え.jp/パス?q=値", "https://例え.jp/パス?q=REDACTED"),
])
def test_sanitize_url(value, expected):
    assert sanitize_url(value) == expected


@pytest.mark.parametrize("value", [
    "not a url at all",
    "http://exa mple.com/",
    "http://a.com/\x00",
    "http://a.com/p?x=\x07",
    "http://[::1/p",
    "http://[::1]x/",
    "http://host:abc/",
    "http://host:80:90/",
    "http://ho<st/",
    "/path with spaces",
    "\t/p",
    "https://user:pa/ss@host/",   # unencoded / in a password: the "port" is not a number
])
def test_garbage_gets_the_marker_never_the_input(value):
    assert sanitize_url(value) == URL_UNPARSEABLE


def test_non_string_gets_the_marker():
    assert sanitize_url(None) == URL_UNPARSEABLE  # type: ignore[arg-type]
    assert sanitize_query(b"a=1") == URL_UNPARSEABLE  # type: ignore[arg-type]


@pytest.mark.parametrize("value,expected", [
    ("/users/123", "/users/{id}"),
    ("/users/123/orders", "/users/{id}/orders"),
    ("/orders/550e8400-e29b-41d4-a716-446655440000", "/orders/{id}"),
    ("/orders/550E8400-E29B-41D4-A716-446655440000/items", "/orders/{id}/items"),
    ("/blobs/deadbeefdeadbeef00", "/blobs/{id}"),
    ("/blobs/deadbeefdeadbee", "/blobs/deadbeefdeadbee"),        # 15 hex: not an id
    ("/users/john@example.com/profile", "/users/{id}/profile"),
    ("/users/john%40example.com/profile", "/users/{id}/profile"),
    ("/t/aB3dE5fG7hJ9kL1mN3pQ5", "/t/{id}"),
    ("/t/aB3dE5fG7hJ9kL1mN3p", "/t/aB3dE5fG7hJ9kL1mN3p"),     # 19 characters: not an id
    ("/blog/best-laptops-2024", "/blog/best-laptops-2024"),
    ("/blog/abcdefghijklmnopqrstuvwxyz0123", "/blog/abcdefghijklmnopqrstuvwxyz0123"),  # no upper case
    ("/api/v2/items", "/api/v2/items"),
    ("/users/usr_plant0316/orders", "/users/{id}/orders"),  # prefixed ids
    ("/api-v2/users/u-42", "/api-v2/users/{id}"),
    ("/rooms/cus_8812", "/rooms/{id}"),
    ("/oauth2/callback", "/oauth2/callback"),
    ("/2024/01/17/post", "/{id}/{id}/{id}/post"),
    ("/u/123;jsessionid=ABC", "/u/{id};jsessionid=REDACTED"),
    ("https://u:p@example.com/users/42?x=1#f", "https://example.com/users/{id}?x=REDACTED"),
    ("users/77", "users/{id}"),
    ("/", "/"),
    ("//", "//"),
])
def test_path_ids(value, expected):
    assert sanitize_url(value, path_ids=True) == expected


def test_path_ids_off_by_default():
    assert sanitize_url("/users/123/john@example.com") == "/users/123/john@example.com"


@pytest.mark.parametrize("value,expected", [
    ("a=1&b=2", "a=REDACTED&b=REDACTED"),
    ("?a=1&b", "?a=REDACTED&b"),
    ("a=1&&b=", "a=REDACTED&&b="),
    ("", ""),
    ("=secret", "=REDACTED"),
    ("q=a=b=c", "q=REDACTED"),
    ("token=eyJhbGciOi.eyJzdWIi.sig&page=2", "token=REDACTED&page=REDACTED"),
    ("a b=c d", "REDACTED=REDACTED"),
    ("\x00=1", "REDACTED=REDACTED"),
    ("utm_source=news&email=bob@example.com", "utm_source=REDACTED&email=REDACTED"),
])
def test_sanitize_query(value, expected):
    assert sanitize_query(value) == expected


# ------------------------------------------------------------------ properties

_SENTINEL = "Zq7"
_BASES = [
    "https://example.com/p?k=",
    "/search?q=",
    "http://[::1]:80/x?a=1&k=",
    "k=",
    "example.com/p?x&k=",
]


@settings(max_examples=300)
@given(st.text(), st.sampled_from(_BASES), st.booleans())
def test_planted_query_value_never_survives(value, base, path_ids):
    planted = quote(_SENTINEL + value + _SENTINEL, safe="")
    url = base + planted + "&tail=1"
    out = sanitize_url(url, path_ids=path_ids)
    assert _SENTINEL not in out
    assert out.endswith("tail=REDACTED") or out == URL_UNPARSEABLE


@settings(max_examples=300)
@given(st.text(alphabet=st.characters(blacklist_characters="@/?#[]", blacklist_categories=("Cs",))))
def test_planted_userinfo_and_fragment_never_survive(secret):
    encoded = quote(_SENTINEL + secret, safe="")
    for url in (
        f"https://{encoded}:{encoded}@example.com/p#{encoded}",
        f"//{encoded}@example.com/p",
        f"https://example.com/p#{_SENTINEL}{secret}",
    ):
        assert _SENTINEL not in sanitize_url(url)


@settings(max_examples=500)
@given(st.text(), st.booleans())
def test_never_raises(value, path_ids):
    out = sanitize_url(value, path_ids=path_ids)
    assert isinstance(out, str)
    assert isinstance(sanitize_query(value), str)


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from(list(":/?#[]@!$&'()*+,;=%.-_~aZ09 \x00")), max_size=40))
def test_never_raises_on_delimiter_soup(value):
    out = sanitize_url(value, path_ids=True)
    assert isinstance(out, str)
    if "#" in value and out != URL_UNPARSEABLE:
        assert "#" not in out


# ------------------------------------------------------------------ span names

@pytest.mark.parametrize("name,path_ids,expected", [
    # METHOD target: the URL rules apply to the target
    ("GET /users/42?email=a@b.c", True, "GET /users/{id}?email=REDACTED"),
    ("GET /users/42?email=a@b.c", False, "GET /users/42?email=REDACTED"),
    ("GET https://api.example/rooms/42", True, "GET https://api.example/rooms/{id}"),
    ("GET https://api.example/rooms/42", False, "GET https://api.example/rooms/42"),
    ("POST https://u:pw@api.example/login?next=/home#top", False, "POST https://api.example/login?next=REDACTED"),
    ("DELETE /carts/550e8400-e29b-41d4-a716-446655440000", True, "DELETE /carts/{id}"),
    ("PATCH //cdn.example/a?v=3", False, "PATCH //cdn.example/a?v=REDACTED"),
    ("_OTHER /x?token=abc", False, "_OTHER /x?token=REDACTED"),
    ("PROPFIND /dav/u/john@example.com/", True, "PROPFIND /dav/u/{id}/"),
    ("GET /search?q=john smith", False, "GET /search?q=REDACTED"),
    # a bare URL or origin-form target
    ("https://shop.example/cart?coupon=SAVE10", False, "https://shop.example/cart?coupon=REDACTED"),
    ("/api/users/42/orders", True, "/api/users/{id}/orders"),
    ("/p;jsessionid=ABC123", False, "/p;jsessionid=REDACTED"),
    # a URL-shaped target that does not parse keeps its method only
    ("GET /path with spaces", False, "GET " + URL_UNPARSEABLE),
    ("GET http://ho<st/x", False, "GET " + URL_UNPARSEABLE),
    # templates and other names: unchanged
    ("GET /users/{id}", True, "GET /users/{id}"),
    ("GET /users/:id", True, "GET /users/:id"),
    ("HTTP GET", True, "HTTP GET"),
    ("GET", True, "GET"),
    ("HTTP", True, "HTTP"),
    ("GET users/42", True, "GET users/42"),
    ("get /users/42", True, "get /users/42"),
    ("checkout", True, "checkout"),
    ("SELECT users", True, "SELECT users"),
    ("grpc.health.v1.Health/Check", True, "grpc.health.v1.Health/Check"),
    ("mailto:bob@example.com", True, "mailto:bob@example.com"),
    ("", True, ""),
    ("/", True, "/"),
])
def test_span_name(name, path_ids, expected):
    assert sanitize_span_name(name, path_ids) == expected


def test_span_name_unchanged_is_the_same_object():
    for name in ("GET /users/{id}", "HTTP GET", "GET", "checkout"):
        assert sanitize_span_name(name, True) is name


def test_span_name_non_string():
    assert sanitize_span_name(None, True) is None  # type: ignore[arg-type]


@settings(max_examples=300)
@given(st.text(), st.sampled_from(["GET ", "POST ", ""]), st.sampled_from(["/p?k=", "https://h.example/p?x=1&k="]),
       st.booleans())
def test_planted_query_value_never_survives_in_a_span_name(value, method, base, path_ids):
    name = method + base + quote(_SENTINEL + value + _SENTINEL, safe="")
    out = sanitize_span_name(name, path_ids)
    assert _SENTINEL not in out
    assert out.startswith(method)


@settings(max_examples=300)
@given(st.text(), st.booleans())
def test_span_name_never_raises(name, path_ids):
    out = sanitize_span_name(name, path_ids)
    assert isinstance(out, str)
