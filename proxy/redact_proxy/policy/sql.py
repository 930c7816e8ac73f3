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

Dialect decisions (the input's dialect is unknown):

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
  positions: after a comparison operator (``=``, ``<``, ``>`` and their compounds),
  after ``LIKE``/``ILIKE``/``RLIKE``/``REGEXP``/``BETWEEN``/``THEN``/``ELSE``, and
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

__all__ = ["SQL_UNPARSEABLE", "sanitize_sql"]

SQL_UNPARSEABLE = "[unparseable sql]"

# Each pattern is anchored at a known position and scans a run of one class or a
# short fixed shape: linear, no backtracking over the input.
_WS = re.compile(r"\s+")
_WORD = re.compile(r"[\w$]*")
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
_OPERAND_KEYWORDS = frozenset({
    "SELECT", "WHERE", "AND", "OR", "NOT", "VALUES", "VALUE", "SET", "THEN", "ELSE", "WHEN",
    "RETURN", "LIMIT", "OFFSET", "BY", "ON", "IN", "BETWEEN", "LIKE", "ILIKE", "IS", "CASE",
    "HAVING", "DEFAULT", "INTERVAL", "TOP", "DISTINCT", "ALL", "ANY", "SOME", "EXISTS",
    "AS", "FETCH", "FIRST", "NEXT", "ESCAPE", "TO", "FROM", "ARRAY",
})
# A double-quoted token right after one of these is a value (MySQL string), not a name.
_VALUE_KEYWORDS = frozenset({"LIKE", "ILIKE", "RLIKE", "REGEXP", "BETWEEN", "THEN", "ELSE"})
_VALUE_OPERATORS = frozenset({"=", "<", ">"})
_LIST_KEYWORDS = frozenset({"IN", "VALUES", "VALUE"})
_SUBQUERY_KEYWORDS = frozenset({"SELECT", "WITH", "VALUES", "TABLE"})
_OPERATOR_CHARS = frozenset("+-*/%=<>!~^&|,;().:?@#$[]{}\\")

# Token kinds.
_KW, _QIDENT, _LIT, _PH, _OP = "kw", "qident", "lit", "ph", "op"


class _Unparseable(Exception):
    """The statement cannot be tokenized; carries no text on purpose."""


def sanitize_sql(statement: str) -> str:
    """``statement`` with literals replaced by ``?``, or ``SQL_UNPARSEABLE``."""
    if not isinstance(statement, str):
        return SQL_UNPARSEABLE
    try:
        mysql, ambiguous, mysql_hidden = _Sanitizer(statement, backslash_escapes=True).run()
    except _Unparseable:
        mysql, ambiguous, mysql_hidden = None, True, []
    if not ambiguous:
        return mysql
    try:
        standard, _, standard_hidden = _Sanitizer(statement, backslash_escapes=False).run()
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

    def __init__(self, sql: str, backslash_escapes: bool) -> None:
        self.sql = sql
        self.bs = backslash_escapes
        self.saw_backslash = False
        self.hidden: list[tuple[int, int]] = []  # input spans replaced or removed, in order
        self.out: list[str] = []        # emitted tokens, each with its leading space
        self.space = False              # whitespace/comment seen since the last token
        self.prev_kind: str | None = None
        self.prev_text = ""             # upper-cased for keywords
        self.parens: list[_Paren] = []
        self.values_row_closed = False  # just closed a VALUES row: "(...), (" is another
        self.comment_open = -2          # cached next "/*" (-1 = none left)
        self.comment_close = -2         # cached next "*/"

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
            del self.out[paren.open_index + 2:]
        self.emit(")", _OP)
        if paren is not None and paren.values_row:
            self.values_row_closed = True

    def end_statement(self) -> None:
        self.emit(";", _OP)
        self.parens.clear()
        self.prev_kind, self.prev_text = None, ""
        self.values_row_closed = False

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
                i = self.literal(i, self.number(i))
            elif c in "+-" and (nxt.isdigit() or (nxt == "." and sql[i + 2:i + 3].isdigit())) \
                    and self.operand_position():
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
            if not self.saw_backslash and "\\" in sql[i + 1:q]:
                self.saw_backslash = True
            return q + 1

    def double_quoted(self, i: int) -> int:
        sql = self.sql
        end = self.quoted(i, '"', self.bs)
        content = sql[i + 1:end - 1]
        if _DQ_IDENT.fullmatch(content) is None:
            return self.literal(i, end)
        dotted = self.prev_text == "." or sql.startswith(".", end)
        in_values = bool(self.parens) and self.parens[-1].value_list
        value_position = (
            in_values
            or (self.prev_kind == _OP and self.prev_text in _VALUE_OPERATORS)
            or (self.prev_kind == _KW and self.prev_text in _VALUE_KEYWORDS)
        )
        if value_position and not dotted:
            self.literal(i, end)
        else:
            self.emit(sql[i:end], _QIDENT)
        return end

    def backtick(self, i: int) -> int:
        end = self.quoted(i, "`", False)
        if _CONTROL.search(self.sql, i, end):
            raise _Unparseable  # MySQL forbids NUL in names; kept text must be clean
        self.emit(self.sql[i:end], _QIDENT)
        return end

    def bracket(self, i: int) -> int:
        sql = self.sql
        close = sql.find("]", i + 1, i + 1 + _BRACKET_MAX)
        if close > i + 1 and _BRACKET_IDENT.fullmatch(sql, i + 1, close):
            self.emit(sql[i:close + 1], _QIDENT)
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
        j = max(_WORD.match(sql, i).end(), i + 1)
        word = sql[i:j]
        lower = word.lower()
        if j < len(sql):
            after = sql[j]
            if after == "'" and (lower in _STRING_PREFIXES or word.startswith("_")):
                # E'..', N'..', X'..', B'..', _utf8mb4'..': one literal.
                return self.literal(i, self.quoted(j, "'", self.bs or lower == "e"))
            if after == "&" and lower == "u" and sql.startswith("'", j + 1):
                return self.literal(i, self.quoted(j + 1, "'", self.bs))  # PostgreSQL U&'...'
        self.emit(word, _KW)
        return j

    def dollar(self, i: int, nxt: str) -> int:
        sql = self.sql
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
