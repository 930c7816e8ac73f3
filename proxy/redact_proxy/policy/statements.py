"""``sanitize`` / ``sanitize_span_name``: database statements sanitized by their dialect.

Strategy: ``db.system.name`` (or the older ``db.system``; semantic-convention values,
compared case-insensitively) picks one reader from ``_FAMILIES``; unknown or absent
systems are read as generic SQL. Every reader is a single left-to-right pass, linear in
the input, and keeps the statement's shape - commands, keywords, identifiers, keys,
nesting - while every literal becomes ``?``. Fail closed: what a reader cannot account
for makes the whole result a fixed placeholder (``SQL_UNPARSEABLE`` for SQL,
``STATEMENT_UNPARSEABLE`` otherwise), never a partial or original text; no exception
leaves this module and none carries statement text.

- SQL (``sql.sanitize_sql`` with a dialect): PostgreSQL, CockroachDB, Redshift, EDB ->
  ``postgresql``; MySQL, MariaDB, Couchbase (N1QL quotes as MySQL does) -> ``mysql``;
  SQL Server -> ``mssql``; Oracle -> ``oracle``; SQLite -> ``sqlite``; Cassandra ->
  ``cql``; anything else -> ``generic``. A generic (unknown system) text that is a
  JSON document is read as JSON, since SQL rules would keep its double-quoted values.
- Redis / Valkey: the command is kept when it is a known command (or a module command
  such as ``FT.SEARCH``), and so is the subcommand of a container command (``CLIENT
  SETNAME``, ``CONFIG SET``) when it is a known one; every argument becomes ``?``, one
  per argument (``AUTH user pw`` -> ``AUTH ? ?``). An unknown command word becomes ``?``
  too, so nothing but known command names survives. Arguments follow redis-cli quoting
  (``"..."`` with backslash escapes, ``'...'`` with ``\\'``); commands are separated by
  newlines or ``;`` outside quotes. The collector keeps keys (DataDog's
  ``ObfuscateRedisString``); keys are personal data often enough (``user:<email>``) that
  they go too.
- Memcached: per the text protocol, the command is kept, keys and values become ``?``,
  numeric protocol fields (flags, exptime, byte count, cas unique) and ``noreply`` stay:
  ``set user:42 0 900 5`` -> ``set ? 0 900 5``. The data block after a storage command
  and everything after it is dropped (the collector keeps the first line only, keys
  included). Meta-command flags keep their letter: ``mg key T30 v`` -> ``mg ? T? v``.
- MongoDB / Elasticsearch / OpenSearch: a JSON document (several, for ND-JSON bulk
  bodies) with keys kept and every scalar replaced - strings by ``"?"``, numbers,
  booleans and null by ``?``; arrays keep their length and nesting its shape. The
  reader also takes what drivers print: single-quoted strings, bare keys, constructor
  calls (``ObjectId('...')`` -> ``ObjectId("?")``), Python ``True``/``None``, and for
  MongoDB a leading command name (``find {...}``). Non-JSON text is unparseable. Keys
  are kept by contract: a key that is itself data (``{"emails.bob@x.com": 1}``) stays.

Span names (``sanitize_span_name``), after the collector's ``sanitize_span_name``: a name
is rewritten only when it is a statement in the span's dialect; any other name is
returned as it is. SQL: the first word is an SQL verb and the rest is more than a
semantic-convention summary (``SELECT users``, ``SELECT db.users``, ``INSERT orders SELECT
carts`` are summaries: verbs and names only). With no ``db.system`` (the collector then
leaves the name alone) the verb must be written in SQL style, all upper or all lower
case, so that prose such as ``Update order 42`` is left alone. Redis/Valkey/Memcached:
the first word is a known command. JSON systems: the name is a JSON document (or, for
MongoDB, a command name followed by one).
"""

from __future__ import annotations

import re
from functools import lru_cache

from redact_proxy.policy.sql import SQL_UNPARSEABLE, sanitize_sql

__all__ = ["STATEMENT_UNPARSEABLE", "sanitize", "sanitize_span_name"]

STATEMENT_UNPARSEABLE = "[unparseable statement]"


class _Unparseable(Exception):
    """The statement cannot be read in its dialect; carries no text on purpose."""


# ---------------------------------------------------------------------------- dispatch

_SQL_DIALECTS = {
    "postgresql": "postgresql",
    "cockroachdb": "postgresql",
    "aws.redshift": "postgresql",
    "redshift": "postgresql",
    "edb": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "couchbase": "mysql",
    "mssql": "mssql",
    "microsoft.sql_server": "mssql",
    "mssqlcompact": "mssql",
    "oracle": "oracle",
    "oracle.db": "oracle",
    "sqlite": "sqlite",
    "cassandra": "cql",
}
_FAMILIES = {
    "redis": "redis",
    "valkey": "redis",
    "memcached": "memcached",
    "mongodb": "mongodb",
    "elasticsearch": "json",
    "opensearch": "json",
}


@lru_cache(maxsize=512)  # system values are few; statements are many
def _family(system: str | None) -> tuple[str, str | None]:
    """(reader, SQL dialect) for a ``db.system`` value."""
    if not isinstance(system, str) or not system:
        return "sql", None
    key = system.strip().lower()
    family = _FAMILIES.get(key)
    if family is not None:
        return family, None
    return "sql", _SQL_DIALECTS.get(key, "generic")


def sanitize(text: str, system: str | None) -> str:
    """``text`` read as a statement of ``system``, literals replaced, or a placeholder."""
    family, dialect = _family(system)
    if family == "sql":
        if not isinstance(text, str):
            return SQL_UNPARSEABLE
        if dialect in (None, "generic") and text.lstrip()[:1] in ("{", "["):
            try:
                return _json(text, allow_command=False)
            except (_Unparseable, RecursionError):
                pass  # JDBC escapes ({call p(?)}) and the like are SQL
        return sanitize_sql(text, dialect)
    if not isinstance(text, str):
        return STATEMENT_UNPARSEABLE
    try:
        return _READERS[family](text)
    except (_Unparseable, RecursionError):
        return STATEMENT_UNPARSEABLE


# ---------------------------------------------------------------------------- Redis

_REDIS_COMMANDS = frozenset(
    """
ACL APPEND ASKING AUTH BGREWRITEAOF BGSAVE BITCOUNT BITFIELD BITFIELD_RO BITOP BITPOS BLMOVE
BLMPOP BLPOP BRPOP BRPOPLPUSH BZMPOP BZPOPMAX BZPOPMIN CLIENT CLUSTER COMMAND COMMANDLOG CONFIG
COPY DBSIZE DEBUG DECR DECRBY DEL DELIFEQ DISCARD DUMP ECHO EVAL EVAL_RO EVALSHA EVALSHA_RO EXEC
EXISTS EXPIRE EXPIREAT EXPIRETIME FAILOVER FCALL FCALL_RO FLUSHALL FLUSHDB FUNCTION GEOADD
GEODIST GEOHASH GEOPOS GEORADIUS GEORADIUS_RO GEORADIUSBYMEMBER GEORADIUSBYMEMBER_RO GEOSEARCH
GEOSEARCHSTORE GET GETBIT GETDEL GETEX GETRANGE GETSET HDEL HELLO HEXISTS HEXPIRE HEXPIREAT
HEXPIRETIME HGET HGETALL HGETDEL HGETEX HINCRBY HINCRBYFLOAT HKEYS HLEN HMGET HMSET HPERSIST
HPEXPIRE HPEXPIREAT HPEXPIRETIME HPTTL HRANDFIELD HSCAN HSET HSETEX HSETNX HSTRLEN HTTL HVALS
INCR INCRBY INCRBYFLOAT INFO KEYS LASTSAVE LATENCY LCS LINDEX LINSERT LLEN LMOVE LMPOP LOLWUT
LPOP LPOS LPUSH LPUSHX LRANGE LREM LSET LTRIM MEMORY MGET MIGRATE MODULE MONITOR MOVE MSET
MSETNX MULTI OBJECT PERSIST PEXPIRE PEXPIREAT PEXPIRETIME PFADD PFCOUNT PFDEBUG PFMERGE
PFSELFTEST PING PSETEX PSUBSCRIBE PSYNC PTTL PUBLISH PUBSUB PUNSUBSCRIBE QUIT RANDOMKEY READONLY
READWRITE RENAME RENAMENX REPLCONF REPLICAOF RESET RESTORE RESTORE-ASKING ROLE RPOP RPOPLPUSH
RPUSH RPUSHX SADD SAVE SCAN SCARD SCRIPT SDIFF SDIFFSTORE SELECT SET SETBIT SETEX SETNX
SETRANGE SHUTDOWN SINTER SINTERCARD SINTERSTORE SISMEMBER SLAVEOF SLOWLOG SMEMBERS SMISMEMBER
SMOVE SORT SORT_RO SPOP SPUBLISH SRANDMEMBER SREM SSCAN SSUBSCRIBE STRLEN SUBSCRIBE SUBSTR
SUNION SUNIONSTORE SUNSUBSCRIBE SWAPDB SYNC TIME TOUCH TTL TYPE UNLINK UNSUBSCRIBE UNWATCH
VADD VCARD VDIM VEMB VGETATTR VINFO VLINKS VRANDMEMBER VREM VSETATTR VSIM
WAIT WAITAOF WATCH XACK XADD XAUTOCLAIM XCLAIM XDEL XGROUP XINFO XLEN XPENDING XRANGE XREAD
XREADGROUP XREVRANGE XSETID XTRIM ZADD ZCARD ZCOUNT ZDIFF ZDIFFSTORE ZINCRBY ZINTER ZINTERCARD
ZINTERSTORE ZLEXCOUNT ZMPOP ZMSCORE ZPOPMAX ZPOPMIN ZRANDMEMBER ZRANGE ZRANGEBYLEX ZRANGEBYSCORE
ZRANGESTORE ZRANK ZREM ZREMRANGEBYLEX ZREMRANGEBYRANK ZREMRANGEBYSCORE ZREVRANGE ZREVRANGEBYLEX
ZREVRANGEBYSCORE ZREVRANK ZSCAN ZSCORE ZUNION ZUNIONSTORE
""".split()
)
# Container commands and their subcommands: only a listed subcommand is kept.
_REDIS_SUBCOMMANDS = {
    name: frozenset(subs.split())
    for name, subs in {
        "ACL": "CAT DELUSER DRYRUN GENPASS GETUSER HELP LIST LOAD LOG SAVE SETUSER USERS WHOAMI",
        "CLIENT": "CACHING CAPA GETNAME GETREDIR HELP ID INFO KILL LIST NO-EVICT NO-TOUCH PAUSE "
        "REPLY SETINFO SETNAME TRACKING TRACKINGINFO UNBLOCK UNPAUSE",
        "CLUSTER": "ADDSLOTS ADDSLOTSRANGE BUMPEPOCH COUNT-FAILURE-REPORTS COUNTKEYSINSLOT DELSLOTS "
        "DELSLOTSRANGE FAILOVER FLUSHSLOTS FORGET GETKEYSINSLOT HELP INFO KEYSLOT LINKS "
        "MEET MYID MYSHARDID NODES REPLICAS REPLICATE RESET SAVECONFIG SET-CONFIG-EPOCH "
        "SETSLOT SHARDS SLAVES SLOTS",
        "COMMAND": "COUNT DOCS GETKEYS GETKEYSANDFLAGS HELP INFO LIST",
        "COMMANDLOG": "GET HELP LEN RESET",
        "CONFIG": "GET HELP RESETSTAT REWRITE SET",
        "DEBUG": "CHANGE-REPL-ID DIGEST DIGEST-VALUE HELP JMAP LOG OBJECT RELOAD SEGFAULT SLEEP",
        "FUNCTION": "DELETE DUMP FLUSH HELP KILL LIST LOAD RESTORE STATS",
        "LATENCY": "DOCTOR GRAPH HELP HISTOGRAM HISTORY LATEST RESET",
        "MEMORY": "DOCTOR HELP MALLOC-STATS PURGE STATS USAGE",
        "MODULE": "HELP LIST LOAD LOADEX UNLOAD",
        "OBJECT": "ENCODING FREQ HELP IDLETIME REFCOUNT",
        "PUBSUB": "CHANNELS HELP NUMPAT NUMSUB SHARDCHANNELS SHARDNUMSUB",
        "SCRIPT": "DEBUG EXISTS FLUSH HELP KILL LOAD",
        "SLOWLOG": "GET HELP LEN RESET",
        "XGROUP": "CREATE CREATECONSUMER DELCONSUMER DESTROY HELP SETID",
        "XINFO": "CONSUMERS GROUPS HELP STREAM",
    }.items()
}
# Redis Stack / Valkey module commands: PREFIX.NAME (FT.SEARCH, JSON.SET, BF.ADD, ...).
_REDIS_MODULE_COMMAND = re.compile(
    r"(?:FT|JSON|BF|CF|CMS|TOPK|TDIGEST|TS|GRAPH|AI|SEARCH|VSET)\.[A-Z_]{1,32}", re.IGNORECASE
)
_REDIS_BARE = re.compile(r"[^\s;]*")
_REDIS_SPACE = re.compile(r"[^\S\n]+")  # whitespace within a line


def _redis_command_word(word: str) -> bool:
    return word.upper() in _REDIS_COMMANDS or _REDIS_MODULE_COMMAND.fullmatch(word) is not None


def _redis(text: str) -> str:
    out: list[str] = []
    for sep, words in _redis_commands(text):
        command, bare = words[0]
        upper = command.upper()
        parts = [command if bare and _redis_command_word(command) else "?"]
        rest = words[1:]
        subs = _REDIS_SUBCOMMANDS.get(upper) if parts[0] != "?" else None
        if subs and rest and rest[0][1] and rest[0][0].upper() in subs:
            parts.append(rest[0][0])
            rest = rest[1:]
        parts.extend("?" for _ in rest)
        if out:
            out.append("\n" if sep == "\n" else "; ")
        out.append(" ".join(parts))
    return "".join(out)


def _redis_commands(text: str) -> list[tuple[str, list[tuple[str, bool]]]]:
    """Commands as (separator before it, [(word, is_bare)]). Quoted words' text is not
    kept (only the fact that the word was quoted): it never reaches the output."""
    commands: list[tuple[str, list[tuple[str, bool]]]] = []
    words: list[tuple[str, bool]] = []
    sep = ""
    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        if c == "\n" or c == ";":
            if words:
                commands.append((sep, words))
                words, sep = [], c
            elif commands and c == "\n":
                sep = c  # a newline wins over ";" as the separator shown
            i += 1
        elif c.isspace():
            i = _REDIS_SPACE.match(text, i).end()
        elif c == '"' or c == "'":
            i = _redis_quoted(text, i)
            if i < n and not (text[i].isspace() or text[i] == ";"):
                raise _Unparseable  # redis-cli: a closing quote must end the argument
            words.append(("", False))
        else:
            j = _REDIS_BARE.match(text, i).end()
            words.append((text[i:j], True))
            i = j
    if words:
        commands.append((sep, words))
    return commands


def _redis_quoted(text: str, i: int) -> int:
    """Index after the quoted argument at ``i``. ``"..."``: ``\\`` escapes the next
    character; ``'...'``: only ``\\'`` is an escape (redis-cli sdssplitargs)."""
    quote = text[i]
    pos = i + 1
    while True:
        q = text.find(quote, pos)
        if q < 0:
            raise _Unparseable
        k = q
        while k > pos and text[k - 1] == "\\":
            k -= 1
        escaped = (q - k) % 2 == 1 if quote == '"' else q > k
        if not escaped:
            return q + 1
        pos = q + 1


# ---------------------------------------------------------------------------- Memcached

# Argument kinds: K key / V value -> ?, N kept if all digits, W kept if all digits or a
# protocol word, F meta flag -> its letter (+ "?" when it carries a token).
_MEMCACHED_WORDS = frozenset(
    {
        "noreply",
        "items",
        "slabs",
        "sizes",
        "settings",
        "detail",
        "conns",
        "extstore",
        "reset",
        "on",
        "off",
        "dump",
        "graceful",
        "enable",
        "disable",
        "start",
        "crawl",
        "metadump",
        "all",
        "hash",
        "automove",
        "reassign",
        "fetchers",
        "mutations",
        "evictions",
        "connevents",
    }
)
_STORE = ("K", "N", "N", "N")
# command -> (fixed kinds, kind of any further argument, is a storage command with data)
_MEMCACHED = {
    **{c: (_STORE, "W", True) for c in ("set", "add", "replace", "append", "prepend")},
    "cas": (_STORE + ("N",), "W", True),
    "get": ((), "K", False),
    "gets": ((), "K", False),
    "gat": (("N",), "K", False),
    "gats": (("N",), "K", False),
    "delete": (("K",), "W", False),
    "incr": (("K", "V"), "W", False),
    "decr": (("K", "V"), "W", False),
    "touch": (("K", "N"), "W", False),
    "mg": (("K",), "F", False),
    "md": (("K",), "F", False),
    "ma": (("K",), "F", False),
    "ms": (("K", "N"), "F", True),
    "me": (("K",), "V", False),
    "mn": ((), "V", False),
    "stats": ((), "W", False),
    "flush_all": ((), "W", False),
    "version": ((), "V", False),
    "verbosity": ((), "W", False),
    "quit": ((), "V", False),
    "shutdown": ((), "W", False),
    "cache_memlimit": ((), "W", False),
    "lru_crawler": ((), "W", False),
    "slabs": ((), "W", False),
    "lru": ((), "W", False),
    "watch": ((), "W", False),
}
_DIGITS = re.compile(r"[0-9]{1,20}")


def _memcached(text: str) -> str:
    out: list[str] = []
    pos, n = 0, len(text)
    while pos < n:
        nl = text.find("\n", pos)
        end = n if nl < 0 else nl
        line, pos = text[pos:end], end + 1
        words = line.split()
        if not words:
            continue
        spec = _MEMCACHED.get(words[0].lower())
        if spec is None:
            if not out:
                raise _Unparseable
            break  # what follows cannot be accounted for: dropped, never shown
        fixed, more, stores = spec
        parts = [words[0]]
        for k, word in enumerate(words[1:]):
            parts.append(_memcached_arg(fixed[k] if k < len(fixed) else more, word))
        out.append(" ".join(parts))
        if stores:
            break  # the data block (and anything after it) is dropped
    return "\n".join(out)


def _memcached_arg(kind: str, word: str) -> str:
    if kind == "N":
        return word if _DIGITS.fullmatch(word) else "?"
    if kind == "W":
        return word if word in _MEMCACHED_WORDS or _DIGITS.fullmatch(word) else "?"
    if kind == "F":
        flag = word[0] if word[0].isascii() and word[0].isalpha() else "?"
        return flag + ("?" if len(word) > 1 else "")
    return "?"


# ---------------------------------------------------------------------------- JSON

_JSON_WS = re.compile(r"\s*")
_JSON_NUMBER = re.compile(r"[-+]?(?:0[xX][0-9A-Fa-f]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)\w*")
_JSON_WORD = re.compile(r"-?[A-Za-z_$][\w$.]*")
_STRING_PREFIX = re.compile(r"[bBuUrR]{1,2}(?=['\"])")
_MONGO_COMMANDS = frozenset(
    """
aggregate bulkWrite collMod count create createIndexes delete distinct drop dropIndexes
endSessions explain find findAndModify findOneAndDelete findOneAndReplace findOneAndUpdate
getMore hello insert isMaster killCursors listCollections listDatabases listIndexes mapReduce
ping update deleteOne deleteMany insertOne insertMany updateOne updateMany replaceOne
countDocuments estimatedDocumentCount watch
""".split()
)

# Parser states on the stack: what the innermost container expects next.
_KEY, _COLON, _VALUE, _AFTER = "key", "colon", "value", "after"


def _json_mongodb(text: str) -> str:
    return _json(text, allow_command=True)


def _json_plain(text: str) -> str:
    return _json(text, allow_command=False)


def _json(text: str, allow_command: bool) -> str:
    """Every top-level document of ``text`` with its scalars replaced."""
    out: list[str] = []
    n = len(text)
    i = _JSON_WS.match(text).end()
    if allow_command:
        m = _JSON_WORD.match(text, i)
        if m and m.group() in _MONGO_COMMANDS:
            j = _JSON_WS.match(text, m.end()).end()
            if j > m.end() and text[j : j + 1] in ("{", "["):
                out.append(m.group() + " ")
                i = j
    if i >= n:
        if out:
            raise _Unparseable
        return ""  # nothing but whitespace
    first, gap = True, i
    while i < n:
        if text[i] not in "{[":
            raise _Unparseable  # a document is an object or an array, not a bare scalar
        if not first:
            out.append("\n" if "\n" in text[gap:i] else " ")
        i = _json_document(text, i, out)
        gap = i
        i = _JSON_WS.match(text, i).end()
        first = False
    return "".join(out)


def _json_document(text: str, i: int, out: list[str]) -> int:
    """Read one document from ``i``; append its sanitized form; return the index after it.

    Iterative: ``stack`` holds one (closer, state) per open container, so nesting depth
    costs no Python recursion.
    """
    n = len(text)
    stack: list[list[str]] = []
    while True:
        i = _JSON_WS.match(text, i).end()
        if i >= n:
            raise _Unparseable
        c = text[i]
        state = stack[-1][1] if stack else _VALUE
        closer = stack[-1][0] if stack else ""
        if c == closer and (state == _AFTER or (state in (_KEY, _VALUE) and _empty(out))):
            stack.pop()
            out.append(c)
            i += 1
        elif state == _AFTER:
            if c != ",":
                raise _Unparseable
            out.append(", ")
            stack[-1][1] = _KEY if closer == "}" else _VALUE
            i += 1
            continue
        elif state == _COLON:
            if c != ":":
                raise _Unparseable
            out.append(": ")
            stack[-1][1] = _VALUE
            i += 1
            continue
        elif state == _KEY:
            i = _json_key(text, i, out)
            stack[-1][1] = _COLON
            continue
        elif c in "{[":
            out.append(c)
            stack.append(["}" if c == "{" else "]", _KEY if c == "{" else _VALUE])
            i += 1
            continue
        else:
            i = _json_scalar(text, i, out, stack)
            if out[-1].endswith("("):
                continue  # a constructor call opened: its arguments come next
        # A value (or a container) is complete.
        if not stack:
            return i
        stack[-1][1] = _AFTER


def _empty(out: list[str]) -> bool:
    """Whether the container just opened has nothing in it yet (``[]``, ``{}``, ``f()``)."""
    return out[-1][-1:] in ("[", "{", "(")


def _json_key(text: str, i: int, out: list[str]) -> int:
    c = text[i]
    if c in "\"'":
        end = _json_string_end(text, i)
        out.append(text[i:end])
        return end
    m = _JSON_WORD.match(text, i)
    if m and not m.group().startswith("-"):
        out.append(m.group())  # a bare key ({name: 1}, {$gt: 5})
        return m.end()
    m = _JSON_NUMBER.match(text, i)
    if m:
        out.append("?")  # a number used as a key is data, not a name
        return m.end()
    raise _Unparseable


def _json_scalar(text: str, i: int, out: list[str], stack: list[list[str]]) -> int:
    c = text[i]
    prefix = _STRING_PREFIX.match(text, i)
    if prefix:
        i = prefix.end()
        c = text[i]
    if c in "\"'":
        out.append('"?"')
        return _json_string_end(text, i)
    m = _JSON_NUMBER.match(text, i)
    if m:
        out.append("?")
        return m.end()
    m = _JSON_WORD.match(text, i)
    if m is None:
        raise _Unparseable
    j = _JSON_WS.match(text, m.end()).end()
    if j < len(text) and text[j] == "(" and not m.group().startswith("-"):
        out.append(m.group() + "(")  # ObjectId("..."), datetime.datetime(...)
        stack.append([")", _VALUE])
        return j + 1
    out.append("?")  # true, null, None, NaN, -Infinity, MinKey, ...
    return m.end()


def _json_string_end(text: str, i: int) -> int:
    quote = text[i]
    pos = i + 1
    while True:
        q = text.find(quote, pos)
        if q < 0:
            raise _Unparseable
        k = q
        while k > pos and text[k - 1] == "\\":
            k -= 1
        if (q - k) % 2 == 0:
            return q + 1
        pos = q + 1


_READERS = {"redis": _redis, "memcached": _memcached, "mongodb": _json_mongodb, "json": _json_plain}


# ---------------------------------------------------------------------------- span names

_SQL_VERBS = frozenset(
    """
ALTER ANALYZE BEGIN CALL COMMIT COPY CREATE DEALLOCATE DECLARE DELETE DESCRIBE DROP EXEC
EXECUTE EXPLAIN GRANT INSERT LOCK MERGE PRAGMA PREPARE RELEASE RENAME REPLACE REVOKE ROLLBACK
SAVEPOINT SELECT SET SHOW TRUNCATE UNLOCK UPDATE UPSERT USE VACUUM VALUES WITH
""".split()
)
_FIRST_WORD = re.compile(r"\s*([A-Za-z_]+)")
_SQL_STRUCTURE = re.compile(r"\b(?:FROM|INTO|WHERE|SET|VALUES|JOIN|TABLE)\b")
# A semantic-convention summary: verbs and (qualified) names, one space apart.
_SUMMARY = re.compile(r"[A-Za-z_][\w$]*(?:\.[A-Za-z_][\w$]*)*(?: [A-Za-z_][\w$]*(?:\.[A-Za-z_][\w$]*)*)*")


def sanitize_span_name(name: str, system: str | None) -> str:
    """``name`` with its literals replaced if it is a statement of ``system``; else ``name``."""
    if not isinstance(name, str):
        return name
    family, _ = _family(system)
    m = _FIRST_WORD.match(name)
    word = m.group(1) if m else ""
    token = name.split(None, 1)[0] if name.strip() else ""
    if family == "sql":
        if word.upper() not in _SQL_VERBS or _SUMMARY.fullmatch(name):
            return name
        if not system and not (word.isupper() and _SQL_STRUCTURE.search(name)):
            # No db.system: the span need not be a database call at all ("use case 42",
            # "delete user's cart"); only an upper-case statement with SQL structure is
            # taken for one.
            return name
    elif family == "redis":
        if not token or not _redis_command_word(token):
            return name
    elif family == "memcached":
        if token.lower() not in _MEMCACHED:
            return name
    else:
        head = name.lstrip()[:1]
        if head not in ("{", "[") and not (
            family == "mongodb" and word in _MONGO_COMMANDS and name[m.end() :].lstrip()[:1] in ("{", "[")
        ):
            return name
    out = sanitize(name, system)
    return name if out == name else out  # unchanged: the input itself
