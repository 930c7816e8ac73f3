"""``sanitize_sql``: replace every literal of an SQL statement with ``?``, keep its shape.

Strategy: one hand-written, left-to-right tokenizer, O(n) in the statement length.
Quoted constructs are skipped with ``str.find`` (every character is looked at a
bounded number of times); the compiled regexes below either scan a run of one
character class or match a short fixed shape at a given position, so none of them
can backtrack over the input. Literals -
quoted strings in all their dialect forms, numbers, hex/bit strings, dollar-quoted
bodies - become ``?``; comments disappear; whitespace collapses to single spaces;
keywords, identifiers, operators, placeholders (``?``, ``$1``, ``:name``, ``@p1``,
``%s``, ``%(name)s``) and punctuation stay as written; ``IN (?, ?, ?)`` collapses to
``IN (?)``. Statements separated by ``;`` are sanitized one after the other (each
starts with fresh context) and joined back with their separators.

Fail closed: anything the tokenizer cannot account for - an unterminated quote,
comment or dollar quote, a control character (NUL included) or an unknown symbol
outside a literal - makes the *whole* result ``SQL_UNPARSEABLE``, never a partial
or original text.

Dialects. ``sanitize_sql(statement, dialect)`` reads the statement with one dialect's
quoting, escape and comment rules (``DIALECTS``: ``generic``, ``postgresql``,
``mysql``, ``mssql``, ``oracle``, ``sqlite``, ``cql``); ``redact_proxy.policy.statements``
picks it from ``db.system.name``. A known dialect reads the text one way only: what
that database would not parse either fails closed. Per dialect:

- ``postgresql``: no backslash escapes except in ``E'...'``; ``"..."`` is an identifier
  (see below); ``#`` is an operator (``#``, ``#>``, ``#>>``, ``#-``), never a comment;
  ``[`` is a subscript; ``$n`` parameters and ``$$``/``$tag$`` literals; comments nest;
  a backtick fails closed.
- ``mysql`` (MariaDB too; Couchbase N1QL reads the same way): backslash escapes in every
  quote; ``"..."`` is always a string - the server default, ANSI_QUOTES off. Under
  ANSI_QUOTES a double-quoted name becomes ``?`` too: it hides more than it should, never
  less. ``#`` always starts a comment; comments do not nest; no dollar quoting.
- ``mssql``: no backslash escapes; ``[...]`` is always an identifier (``]]`` escapes a
  ``]``), ``"..."`` an identifier (QUOTED_IDENTIFIER ON, the driver default); ``N'...'``;
  ``#tmp``/``##tmp`` names; ``$12.50`` money literals; ``$action``; comments nest; a
  backtick fails closed.
- ``oracle``: no backslash escapes; ``q'[...]'``-style alternative quotes (any delimiter,
  bracket pairs closing with their partner) and ``nq'...'``; ``#`` and ``$`` inside
  names (``emp#``, ``v$session``); comments do not nest; a backtick fails closed.
- ``sqlite``: no backslash escapes; ``"..."`` and ``[...]`` read as in ``generic`` (SQLite
  takes an unknown double-quoted name as a string); ``$name``/``@name``/``:name``
  parameters, no dollar quoting; comments do not nest.
- ``cql`` (Cassandra): ``"..."`` identifiers, ``$$...$$`` strings, ``//`` line comments,
  ``[`` list literals; a backtick fails closed.
- In an identifier dialect a double-quoted name is kept, except that one not shaped like
  a plain name (spaces, ``@``, ...) in a value position becomes ``?``: a failing query
  that used ``"..."`` for a string still does not show it.

In every dialect: a bare UUID (CQL ``uuid`` literals) is one literal; ``TRUE``/``FALSE``
are literals (``NULL`` is kept: it says nothing); whatever follows ``IDENTIFIED BY``
(Oracle and MySQL passwords, quoted or bare) is a literal.

``generic`` decisions (the input's dialect is unknown):

- Backslash escapes inside quotes are MySQL-only; in standard SQL ``'C:\\'`` is a
  complete string. When a quoted token contains a backslash, the statement is
  tokenized both ways. If only one way succeeds it is used. If both succeed with
  different results, a reading is returned only if it hides every meaningful
  character (anything but whitespace and ASCII punctuation) that the other reading
  hides - so it is safe whichever dialect is right; the MySQL reading is preferred
  when both qualify, and when neither does the result is ``SQL_UNPARSEABLE``.
  ``E'...'`` (PostgreSQL) always uses backslash escapes.
- ``"..."`` is an identifier in ANSI SQL/PostgreSQL but a string in MySQL. It is kept
  only when it looks like an identifier (``[A-Za-z_][A-Za-z0-9_$]*``, at most 128
  characters) and is not in a value position; otherwise it becomes ``?``. Value
  positions: after a comparison operator (``=``, ``<``, ``>`` and their compounds) or
  a ``:`` key separator (CQL maps, JSON read as SQL), after ``LIKE``/``ILIKE``/``RLIKE``/``REGEXP``/``BETWEEN``/``THEN``/``ELSE``, and
  anywhere inside a ``VALUES (...)`` row or an ``IN (...)`` list that is not a
  subquery. A quoted name next to a ``.`` (``"t"."col"``) is always an identifier.
  Costs: PostgreSQL ``"a" = "b"`` column comparisons and quoted identifiers with spaces
  lose the right-hand/odd-shaped name; a MySQL one-word double-quoted string outside
  a value position (``CONCAT("abc", x)``) is kept.
- ``#`` starts a MySQL comment, except ``#>``/``#>>`` (PostgreSQL JSON operators) and
  ``#name``/``##name`` (SQL Server temporary tables).
- ``[...]`` is a SQL Server identifier only when its content looks like a name
  (letters, digits, ``_ $ # @ - .`` and spaces, at most 128 characters); otherwise
  ``[`` is an operator and the content is tokenized (``ARRAY['a']`` -> ``ARRAY[?]``).
- Anything starting with a digit is a literal (MySQL's digit-leading identifiers
  such as ``1table`` become ``?``). ``:1``-style positional placeholders are kept.
- ``-``/``+`` directly before a number in an operand position (after an operator,
  ``(``, ``,``, a keyword or at the start) is part of the literal: ``x = -5`` ->
  ``x = ?``; ``a-1`` keeps the minus: ``a-?``.
- ``/* */`` comments nest (PostgreSQL); in MySQL a nested opener makes the comment
  look unterminated, which fails closed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DIALECTS", "SQL_UNPARSEABLE", "sanitize_sql"]

SQL_UNPARSEABLE = "[unparseable sql]"

# Each pattern is anchored at a known position and scans a run of one class or a
# short fixed shape: linear, no backtracking over the input.
_WS = re.compile(r"\s+")
_WORD = re.compile(r"[\w$]*")
_ORACLE_WORD = re.compile(r"[\w$#]*")
_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(?![\w$])")
_DIGITS = re.compile(r"[0-9_]*")
_HEX = re.compile(r"[0-9A-Fa-f_]*")
_EXPONENT = re.compile(r"[eE][+-]?[0-9]+")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\x80-\U0010ffff][\w]*)?\$")
_PYFORMAT = re.compile(r"%(?:\([A-Za-z_][\w]*\))?s")
_DQ_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,127}")
_BRACKET_IDENT = re.compile(r"(?:[^\W\d]|[$#@])[\w $#@.\-]{0,127}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Characters that carry no content on their own: whitespace and ASCII punctuation.
_MEANINGFUL = re.compile(r"[^\s!-/:-@\[-`{-~]")

_BRACKET_MAX = 130  # SQL Server names are <= 128 characters; bounds the look-ahead

# Prefixes that turn an adjacent '...' into one literal: PostgreSQL E'' (escapes),
# N'' (SQL Server national), X''/B'' (hex/bit strings), R''/RB'' (BigQuery raw/bytes).
_STRING_PREFIXES = frozenset({"e", "n", "x", "b", "r", "rb", "br"})

# After these the next token is an operand, so a sign before a number belongs to it.
_OPERAND_KEYWORDS = frozenset(
    {
        "SELECT",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "VALUES",
        "VALUE",
        "SET",
        "THEN",
        "ELSE",
        "WHEN",
        "RETURN",
        "LIMIT",
        "OFFSET",
        "BY",
        "ON",
        "IN",
        "BETWEEN",
        "LIKE",
        "ILIKE",
        "IS",
        "CASE",
        "HAVING",
        "DEFAULT",
        "INTERVAL",
        "TOP",
        "DISTINCT",
        "ALL",
        "ANY",
        "SOME",
        "EXISTS",
        "AS",
        "FETCH",
        "FIRST",
        "NEXT",
        "ESCAPE",
        "TO",
        "FROM",
        "ARRAY",
    }
)
# A double-quoted token right after one of these is a value (MySQL string), not a name.
_VALUE_KEYWORDS = frozenset({"LIKE", "ILIKE", "RLIKE", "REGEXP", "BETWEEN", "THEN", "ELSE"})
# ":" is a key/value separator in the JSON-like literals (CQL maps, a JSON text read as SQL).
_VALUE_OPERATORS = frozenset({"=", "<", ">", ":"})
_BOOLEANS = frozenset({"TRUE", "FALSE"})
# Oracle q'' quotes: an opening bracket closes with its partner, any other char with itself.
_Q_CLOSERS = {"[": "]", "{": "}", "(": ")", "<": ">"}
_LIST_KEYWORDS = frozenset({"IN", "VALUES", "VALUE"})
_SUBQUERY_KEYWORDS = frozenset({"SELECT", "WITH", "VALUES", "TABLE"})
_OPERATOR_CHARS = frozenset("+-*/%=<>!~^&|,;().:?@#$[]{}\\")

# Token kinds.
_KW, _QIDENT, _LIT, _PH, _OP = "kw", "qident", "lit", "ph", "op"


class _Unparseable(Exception):
    """The statement cannot be tokenized; carries no text on purpose."""


@dataclass(frozen=True, slots=True)
class _Dialect:
    """How one dialect quotes, escapes and comments. ``"guess"`` = the generic reading."""

    backslash: str = "guess"  # guess | always | never (E'' always escapes)
    double_quote: str = "guess"  # guess | string | identifier
    hash: str = "guess"  # guess | comment | operator | name (#temp)
    bracket: str = "guess"  # guess | identifier | operator
    dollar: str = "pg"  # pg ($1, $tag$) | param ($name) | money | cql ($$ only)
    backticks: bool = True  # False: a backtick fails closed
    nested_comments: bool = True
    slash_comments: bool = False  # CQL // line comments
    q_quotes: bool = True  # Oracle q'[...]'
    hash_in_words: bool = False  # Oracle emp#


DIALECTS: dict[str, _Dialect] = {
    "generic": _Dialect(),
    "postgresql": _Dialect(
        backslash="never",
        double_quote="identifier",
        hash="operator",
        bracket="operator",
        backticks=False,
        q_quotes=False,
    ),
    "mysql": _Dialect(
        backslash="always",
        double_quote="string",
        hash="comment",
        bracket="operator",
        dollar="param",
        nested_comments=False,
        q_quotes=False,
    ),
    "mssql": _Dialect(
        backslash="never",
        double_quote="identifier",
        hash="name",
        bracket="identifier",
        dollar="money",
        backticks=False,
        q_quotes=False,
    ),
    "oracle": _Dialect(
        backslash="never",
        double_quote="identifier",
        hash="operator",
        bracket="operator",
        dollar="param",
        backticks=False,
        nested_comments=False,
        hash_in_words=True,
    ),
    "sqlite": _Dialect(backslash="never", dollar="param", nested_comments=False, q_quotes=False),
    "cql": _Dialect(
        backslash="never",
        double_quote="identifier",
        hash="operator",
        bracket="operator",
        dollar="cql",
        backticks=False,
        nested_comments=False,
        slash_comments=True,
        q_quotes=False,
    ),
}
_GENERIC = DIALECTS["generic"]


def sanitize_sql(statement: str, dialect: str | None = None) -> str:
    """``statement`` with literals replaced by ``?``, or ``SQL_UNPARSEABLE``.

    ``dialect`` is a ``DIALECTS`` name; ``None`` or an unknown name reads it generically.
    """
    if not isinstance(statement, str):
        return SQL_UNPARSEABLE
    rules = DIALECTS.get(dialect, _GENERIC) if dialect else _GENERIC
    if rules.backslash != "guess":
        try:
            return _Sanitizer(statement, rules.backslash == "always", rules).run()[0]
        except _Unparseable:
            return SQL_UNPARSEABLE
    try:
        mysql, ambiguous, mysql_hidden = _Sanitizer(statement, True, rules).run()
    except _Unparseable:
        mysql, ambiguous, mysql_hidden = None, True, []
    if not ambiguous and mysql is not None:  # an unparseable reading is ambiguous
        return mysql
    try:
        standard, _, standard_hidden = _Sanitizer(statement, False, rules).run()
    except _Unparseable:
        standard, standard_hidden = None, []
    if mysql is None:
        return SQL_UNPARSEABLE if standard is None else standard
    if standard is None or standard == mysql:
        return mysql
    # Both readings tokenize but differ. A reading is safe to return if it hides every
    # meaningful character the other reading hides: then whichever dialect is right,
    # no literal content is revealed.
    if not _reveals(statement, standard_hidden, mysql_hidden):
        return mysql
    if not _reveals(statement, mysql_hidden, standard_hidden):
        return standard
    return SQL_UNPARSEABLE


def _reveals(sql: str, hidden: list[tuple[int, int]], by: list[tuple[int, int]]) -> bool:
    """Whether a meaningful character inside a ``hidden`` span lies outside every ``by`` span.

    Both lists are sorted and non-overlapping, so one merge pass suffices.
    """
    k = 0
    for start, end in hidden:
        pos = start
        while pos < end:
            while k < len(by) and by[k][1] <= pos:
                k += 1
            if k < len(by) and by[k][0] <= pos:
                pos = by[k][1]  # covered up to the end of this span
                continue
            gap_end = min(end, by[k][0]) if k < len(by) else end
            if _MEANINGFUL.search(sql, pos, gap_end):
                return True
            pos = gap_end
    return False


class _Paren:
    __slots__ = ("open_index", "value_list", "values_row", "in_list", "only_literals", "first")

    def __init__(self, open_index: int, value_list: bool, values_row: bool, in_list: bool):
        self.open_index = open_index
        self.value_list = value_list
        self.values_row = values_row
        self.in_list = in_list
        self.only_literals = True  # nothing but ? and , directly inside so far
        self.first = True


class _Sanitizer:
    """One tokenizing pass.

    ``run`` returns the sanitized text, whether a quoted token contained a backslash
    (the two dialect readings may differ) and the input spans it hid, in order.
    """

    def __init__(self, sql: str, backslash_escapes: bool, dialect: _Dialect = _GENERIC) -> None:
        self.sql = sql
        self.bs = backslash_escapes
        self.d = dialect
        self.word_re = _ORACLE_WORD if dialect.hash_in_words else _WORD
        self.prev2_text = ""  # the token before the previous one (IDENTIFIED BY)
        self.saw_backslash = False
        self.hidden: list[tuple[int, int]] = []  # input spans replaced or removed, in order
        self.out: list[str] = []  # emitted tokens, each with its leading space
        self.space = False  # whitespace/comment seen since the last token
        self.prev_kind: str | None = None
        self.prev_text = ""  # upper-cased for keywords
        self.parens: list[_Paren] = []
        self.values_row_closed = False  # just closed a VALUES row: "(...), (" is another
        self.comment_open = -2  # cached next "/*" (-1 = none left)
        self.comment_close = -2  # cached next "*/"

    # ------------------------------------------------------------------ emission
    def emit(self, text: str, kind: str) -> None:
        if self.parens:
            top = self.parens[-1]
            if top.first:
                top.first = False
                if kind == _KW and text.upper() in _SUBQUERY_KEYWORDS:
                    top.value_list = False
            if not (text == "?" or text == ","):
                top.only_literals = False
        self.out.append(" " + text if self.space and self.out else text)
        self.space = False
        if text != ",":
            self.values_row_closed = False
        self.prev2_text = self.prev_text
        self.prev_kind = kind
        self.prev_text = text.upper() if kind == _KW else text

    def open_paren(self) -> None:
        prev_kw = self.prev_text if self.prev_kind == _KW else ""
        row = prev_kw in ("VALUES", "VALUE") or (self.prev_text == "," and self.values_row_closed)
        inherited = bool(self.parens) and self.parens[-1].value_list
        value_list = row or prev_kw in _LIST_KEYWORDS or inherited
        in_list = prev_kw == "IN"
        self.emit("(", _OP)
        self.parens.append(_Paren(len(self.out) - 1, value_list, row, in_list))

    def close_paren(self) -> None:
        paren = self.parens.pop() if self.parens else None
        if paren is not None and paren.in_list and paren.only_literals and not paren.first:
            # IN (?, ?, ?) -> IN (?): keep the first literal (and its spacing) only.
            del self.out[paren.open_index + 2 :]
        self.emit(")", _OP)
        if paren is not None and paren.values_row:
            self.values_row_closed = True

    def end_statement(self) -> None:
        self.emit(";", _OP)
        self.parens.clear()
        self.prev_kind, self.prev_text = None, ""
        self.values_row_closed = False

    def secret_position(self) -> bool:
        """Right after ``IDENTIFIED BY``: the next token is a password, whatever its form."""
        return self.prev_kind == _KW and self.prev_text == "BY" and self.prev2_text == "IDENTIFIED"

    def operand_position(self) -> bool:
        kind, text = self.prev_kind, self.prev_text
        if kind is None:
            return True
        if kind == _OP:
            return text not in (")", "]")
        return kind == _KW and text in _OPERAND_KEYWORDS

    # ------------------------------------------------------------------ scanning
    def run(self) -> tuple[str, bool, list[tuple[int, int]]]:
        sql = self.sql
        n = len(sql)
        i = 0
        while i < n:
            c = sql[i]
            nxt = sql[i + 1] if i + 1 < n else ""
            if c.isspace():
                i = max(_WS.match(sql, i).end(), i + 1)
                self.space = True
            elif c == "-" and nxt == "-":
                i = self.line_comment(i)
            elif c == "/" and nxt == "*":
                i = self.block_comment(i)
            elif c == "/" and nxt == "/" and self.d.slash_comments:
                i = self.line_comment(i)
            elif c == "#":
                i = self.hash(i, nxt)
            elif c == "'":
                i = self.literal(i, self.quoted(i, "'", self.bs))
            elif c == '"':
                i = self.double_quoted(i)
            elif c == "`":
                i = self.backtick(i)
            elif c == "[":
                i = self.bracket(i)
            elif c.isdigit() or (c == "." and nxt.isdigit() and self.prev_kind not in (_KW, _QIDENT)):
                m = _UUID.match(sql, i)
                i = self.literal(i, m.end() if m else self.number(i))
            elif (
                c in "+-"
                and (nxt.isdigit() or (nxt == "." and sql[i + 2 : i + 3].isdigit()))
                and self.operand_position()
            ):
                i = self.literal(i, self.number(i + 1))
            elif c.isalpha() or c == "_":
                i = self.word(i)
            elif c == "$":
                i = self.dollar(i, nxt)
            elif c == "?":
                j = i + 1
                while j < n and sql[j].isdigit():  # SQLite ?NNN
                    j += 1
                self.emit(sql[i:j], _PH)
                i = j
            elif c == ":":
                i = self.colon(i, nxt)
            elif c == "@":
                j = i + 2 if nxt == "@" else i + 1
                j = _WORD.match(sql, j).end()
                self.emit(sql[i:j], _PH if j > i + 1 else _OP)
                i = j
            elif c == "%":
                m = _PYFORMAT.match(sql, i)
                if m:
                    self.emit(m.group(), _PH)
                    i = m.end()
                else:
                    self.emit("%", _OP)
                    i += 1
            elif c == "(":
                self.open_paren()
                i += 1
            elif c == ")":
                self.close_paren()
                i += 1
            elif c == ";":
                self.end_statement()
                i += 1
            elif c in _OPERATOR_CHARS:
                self.emit(c, _OP)
                i += 1
            else:
                raise _Unparseable  # control characters (NUL), stray symbols
        return "".join(self.out), self.saw_backslash, self.hidden

    def literal(self, start: int, end: int) -> int:
        self.hidden.append((start, end))
        self.emit("?", _LIT)
        return end

    def line_comment(self, i: int) -> int:
        end = self.sql.find("\n", i)
        end = len(self.sql) if end < 0 else end + 1
        self.hidden.append((i, end))
        self.space = True
        return end

    def block_comment(self, i: int) -> int:
        # Nested (PostgreSQL). The next "/*" and "*/" are cached and only searched again
        # once passed, so every character is scanned at most twice overall.
        sql = self.sql
        start = i
        if not self.d.nested_comments:
            close = sql.find("*/", i + 2)
            if close < 0:
                raise _Unparseable
            self.hidden.append((start, close + 2))
            self.space = True
            return close + 2
        depth = 0
        while True:
            if self.comment_open != -1 and self.comment_open < i:
                self.comment_open = sql.find("/*", i)
            if self.comment_close < i:
                self.comment_close = sql.find("*/", i)
                if self.comment_close < 0:
                    raise _Unparseable
            if self.comment_open != -1 and self.comment_open < self.comment_close:
                depth += 1
                i = self.comment_open + 2
            else:
                depth -= 1
                i = self.comment_close + 2
                if depth == 0:
                    self.hidden.append((start, i))
                    self.space = True
                    return i

    def hash(self, i: int, nxt: str) -> int:
        sql = self.sql
        mode = self.d.hash
        if mode == "comment":
            return self.line_comment(i)
        if mode == "operator":
            op = "#>>" if sql.startswith("#>>", i) else sql[i : i + 2] if nxt in (">", "-") else "#"
            self.emit(op, _OP)
            return i + len(op)
        if mode == "name" and not (nxt and (nxt.isalpha() or nxt in "_#")):
            self.emit("#", _OP)
            return i + 1
        if nxt == ">":
            op = "#>>" if sql.startswith("#>>", i) else "#>"
            self.emit(op, _OP)
            return i + len(op)
        if nxt and (nxt.isalpha() or nxt in "_#"):
            j = i + 1
            while j < len(sql) and sql[j] == "#":
                j += 1
            j = _WORD.match(sql, j).end()
            self.emit(sql[i:j], _KW)  # SQL Server #temp / ##global table
            return j
        return self.line_comment(i)

    def quoted(self, i: int, quote: str, backslash: bool) -> int:
        """Skip a quoted token starting at ``i``; return the index after it."""
        sql = self.sql
        pos = i + 1
        while True:
            q = sql.find(quote, pos)
            if q < 0:
                raise _Unparseable
            if backslash:
                k = q
                while k > pos and sql[k - 1] == "\\":
                    k -= 1
                if (q - k) % 2:  # odd run of backslashes: the quote is escaped
                    pos = q + 1
                    continue
            if q + 1 < len(sql) and sql[q + 1] == quote:  # doubled quote
                pos = q + 2
                continue
            if not self.saw_backslash and "\\" in sql[i + 1 : q]:
                self.saw_backslash = True
            return q + 1

    def double_quoted(self, i: int) -> int:
        sql = self.sql
        mode = self.d.double_quote
        end = self.quoted(i, '"', self.bs and mode != "identifier")
        if mode == "string" or self.secret_position():
            return self.literal(i, end)
        plain = _DQ_IDENT.fullmatch(sql, i + 1, end - 1) is not None
        if mode == "guess" and not plain:
            return self.literal(i, end)
        dotted = self.prev_text == "." or sql.startswith(".", end)
        in_values = bool(self.parens) and self.parens[-1].value_list
        value_position = (
            in_values
            or (self.prev_kind == _OP and self.prev_text in _VALUE_OPERATORS)
            or (self.prev_kind == _KW and self.prev_text in _VALUE_KEYWORDS)
        )
        if mode == "identifier":
            # The dialect says identifier; only an odd-shaped one in a value position
            # is taken for a misquoted string.
            if value_position and not dotted and not plain:
                return self.literal(i, end)
            if _CONTROL.search(sql, i, end):
                raise _Unparseable
            self.emit(sql[i:end], _QIDENT)
        elif value_position and not dotted:
            self.literal(i, end)
        else:
            self.emit(sql[i:end], _QIDENT)
        return end

    def backtick(self, i: int) -> int:
        if not self.d.backticks:
            raise _Unparseable
        end = self.quoted(i, "`", False)
        if self.secret_position():
            return self.literal(i, end)
        if _CONTROL.search(self.sql, i, end):
            raise _Unparseable  # MySQL forbids NUL in names; kept text must be clean
        self.emit(self.sql[i:end], _QIDENT)
        return end

    def bracket(self, i: int) -> int:
        sql = self.sql
        if self.d.bracket == "operator":
            self.emit("[", _OP)
            return i + 1
        if self.d.bracket == "identifier":  # T-SQL: always a name; "]]" is an escaped "]"
            end = self.quoted(i, "]", False)
            if end - i > _BRACKET_MAX + 2 or _CONTROL.search(sql, i, end):
                raise _Unparseable
            if self.secret_position():
                return self.literal(i, end)
            self.emit(sql[i:end], _QIDENT)
            return end
        close = sql.find("]", i + 1, i + 1 + _BRACKET_MAX)
        if close > i + 1 and _BRACKET_IDENT.fullmatch(sql, i + 1, close):
            self.emit(sql[i : close + 1], _QIDENT)
            return close + 1
        self.emit("[", _OP)
        return i + 1

    def number(self, i: int) -> int:
        sql = self.sql
        if sql.startswith(("0x", "0X"), i):
            j = _HEX.match(sql, i + 2).end()
        elif sql.startswith(("0b", "0B"), i):
            j = _DIGITS.match(sql, i + 2).end()
        else:
            j = _DIGITS.match(sql, i).end()
            if j < len(sql) and sql[j] == ".":
                j = _DIGITS.match(sql, j + 1).end()
            m = _EXPONENT.match(sql, j)
            if m:
                j = m.end()
        # Glued word characters (1abc, 0xZZ, 1e) belong to the same literal.
        return max(_WORD.match(sql, j).end(), i + 1)

    def word(self, i: int) -> int:
        sql = self.sql
        m = _UUID.match(sql, i)
        if m:
            return self.literal(i, m.end())
        j = max(self.word_re.match(sql, i).end(), i + 1)
        word = sql[i:j]
        lower = word.lower()
        if j < len(sql):
            after = sql[j]
            if after == "'" and lower in ("q", "nq") and self.d.q_quotes:
                return self.literal(i, self.q_quote(j))
            if after == "'" and (lower in _STRING_PREFIXES or word.startswith("_")):
                # E'..', N'..', X'..', B'..', _utf8mb4'..': one literal.
                return self.literal(i, self.quoted(j, "'", self.bs or lower == "e"))
            if after == "&" and lower == "u" and sql.startswith("'", j + 1):
                return self.literal(i, self.quoted(j + 1, "'", self.bs))  # PostgreSQL U&'...'
        upper = word.upper()
        if (upper in _BOOLEANS or self.secret_position()) and upper != "VALUES":
            return self.literal(i, j)
        self.emit(word, _KW)
        return j

    def q_quote(self, j: int) -> int:
        """Oracle ``q'<delim>...<close>'`` from the quote at ``j``; the index after it."""
        sql = self.sql
        if j + 1 >= len(sql) or sql[j + 1].isspace():
            raise _Unparseable
        closer = _Q_CLOSERS.get(sql[j + 1], sql[j + 1]) + "'"
        close = sql.find(closer, j + 2)
        if close < 0:
            raise _Unparseable
        return close + 2

    def dollar(self, i: int, nxt: str) -> int:
        sql = self.sql
        mode = self.d.dollar
        if mode == "money" and (nxt.isdigit() or nxt == "."):
            return self.literal(i, self.number(i + 1))
        if mode in ("param", "money") and (nxt.isalnum() or nxt == "_"):
            j = self.word_re.match(sql, i + 1).end()
            self.emit(sql[i:j], _PH)  # SQLite $name, T-SQL $action, MySQL $ in names
            return j
        if mode in ("param", "money"):
            self.emit("$", _OP)
            return i + 1
        if mode == "cql" and nxt != "$":
            self.emit("$", _OP)
            return i + 1
        if nxt.isdigit():
            j = _DIGITS.match(sql, i + 1).end()
            self.emit(sql[i:j], _PH)
            return j
        m = _DOLLAR_TAG.match(sql, i)
        if m is None:
            self.emit("$", _OP)
            return i + 1
        tag = m.group()
        close = sql.find(tag, m.end())
        if close < 0:
            raise _Unparseable
        return self.literal(i, close + len(tag))

    def colon(self, i: int, nxt: str) -> int:
        sql = self.sql
        if nxt == ":":  # PostgreSQL cast
            self.emit("::", _OP)
            return i + 2
        if nxt.isalpha() or nxt == "_" or nxt.isdigit():
            j = _WORD.match(sql, i + 1).end()
            self.emit(sql[i:j], _PH)  # :name, :1
            return j
        self.emit(":", _OP)
        return i + 1
