//! `sanitize_statement` / `sql_span_name`: database statements sanitized by their
//! dialect -- a port of `redact_proxy/policy/statements.py` (the reference, which
//! documents each family's rules).
//!
//! Strategy: `db.system.name` picks one reader exactly as `statements._family` does
//! (Python's `strip()` and `lower()`); SQL goes to `sql.rs`, JSON to `json.rs`, Redis and
//! Memcached are read here. Every reader is one iterative pass over the code points; what
//! the reference finds unparseable gives the same fixed placeholder.

use std::collections::HashSet;
use std::sync::OnceLock;

use super::json::{self, is_mongo_command};
use super::pychar::{ascii_lower, ascii_upper, ci_letter, is_space, is_word, lstrip, strip};
use super::sql::sanitize_chars;

pub const STATEMENT_UNPARSEABLE: &str = "[unparseable statement]";

#[derive(Clone, Copy, PartialEq)]
enum Family { Sql, Redis, Memcached, Mongodb, Json }

/// (reader, SQL dialect) for a `db.system` value (`statements._family`).
fn family(system: Option<&str>) -> (Family, Option<&'static str>) {
    let Some(system) = system.filter(|s| !s.is_empty()) else {
        return (Family::Sql, None);
    };
    let chars: Vec<char> = system.chars().collect();
    // Every key below is ASCII: a lower-cased system that is not equals none of them.
    let key = ascii_lower(strip(&chars)).unwrap_or_default();
    let family = match key.as_str() {
        "redis" | "valkey" => Family::Redis,
        "memcached" => Family::Memcached,
        "mongodb" => Family::Mongodb,
        "elasticsearch" | "opensearch" => Family::Json,
        _ => Family::Sql,
    };
    if family != Family::Sql {
        return (family, None);
    }
    let dialect = match key.as_str() {
        "postgresql" | "cockroachdb" | "aws.redshift" | "redshift" | "edb" => "postgresql",
        "mysql" | "mariadb" | "couchbase" => "mysql",
        "mssql" | "microsoft.sql_server" | "mssqlcompact" => "mssql",
        "oracle" | "oracle.db" => "oracle",
        "sqlite" => "sqlite",
        "cassandra" => "cql",
        _ => "generic",
    };
    (Family::Sql, Some(dialect))
}

/// `text` read as a statement of `system`, literals replaced, or a placeholder
/// (`statements.sanitize`).
pub fn sanitize_statement(text: &str, system: Option<&str>) -> String {
    let chars: Vec<char> = text.chars().collect();
    sanitize_with(&chars, family(system))
}

fn sanitize_with(text: &[char], (family, dialect): (Family, Option<&'static str>)) -> String {
    let read = match family {
        Family::Sql => {
            if matches!(dialect, None | Some("generic")) && matches!(lstrip(text).first(), Some('{' | '[')) {
                if let Ok(out) = json::json(text, false) {
                    return out;
                } // JDBC escapes ({call p(?)}) and the like are SQL
            }
            return sanitize_chars(text, dialect);
        }
        Family::Redis => redis(text),
        Family::Memcached => memcached(text),
        Family::Mongodb => json::json(text, true).map_err(|_| Unparseable),
        Family::Json => json::json(text, false).map_err(|_| Unparseable),
    };
    read.unwrap_or_else(|Unparseable| STATEMENT_UNPARSEABLE.to_string())
}

/// The statement cannot be read in its dialect; carries no text on purpose.
struct Unparseable;
type Read = Result<String, Unparseable>;

// ---------------------------------------------------------------------------- Redis

const REDIS_COMMANDS: &str = "
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
";
// Container commands and their subcommands: only a listed subcommand is kept.
const REDIS_SUBCOMMANDS: &[(&str, &str)] = &[
    ("ACL", "CAT DELUSER DRYRUN GENPASS GETUSER HELP LIST LOAD LOG SAVE SETUSER USERS WHOAMI"),
    ("CLIENT", "CACHING CAPA GETNAME GETREDIR HELP ID INFO KILL LIST NO-EVICT NO-TOUCH PAUSE \
                REPLY SETINFO SETNAME TRACKING TRACKINGINFO UNBLOCK UNPAUSE"),
    ("CLUSTER", "ADDSLOTS ADDSLOTSRANGE BUMPEPOCH COUNT-FAILURE-REPORTS COUNTKEYSINSLOT DELSLOTS \
                 DELSLOTSRANGE FAILOVER FLUSHSLOTS FORGET GETKEYSINSLOT HELP INFO KEYSLOT LINKS \
                 MEET MYID MYSHARDID NODES REPLICAS REPLICATE RESET SAVECONFIG SET-CONFIG-EPOCH \
                 SETSLOT SHARDS SLAVES SLOTS"),
    ("COMMAND", "COUNT DOCS GETKEYS GETKEYSANDFLAGS HELP INFO LIST"),
    ("COMMANDLOG", "GET HELP LEN RESET"),
    ("CONFIG", "GET HELP RESETSTAT REWRITE SET"),
    ("DEBUG", "CHANGE-REPL-ID DIGEST DIGEST-VALUE HELP JMAP LOG OBJECT RELOAD SEGFAULT SLEEP"),
    ("FUNCTION", "DELETE DUMP FLUSH HELP KILL LIST LOAD RESTORE STATS"),
    ("LATENCY", "DOCTOR GRAPH HELP HISTOGRAM HISTORY LATEST RESET"),
    ("MEMORY", "DOCTOR HELP MALLOC-STATS PURGE STATS USAGE"),
    ("MODULE", "HELP LIST LOAD LOADEX UNLOAD"),
    ("OBJECT", "ENCODING FREQ HELP IDLETIME REFCOUNT"),
    ("PUBSUB", "CHANNELS HELP NUMPAT NUMSUB SHARDCHANNELS SHARDNUMSUB"),
    ("SCRIPT", "DEBUG EXISTS FLUSH HELP KILL LOAD"),
    ("SLOWLOG", "GET HELP LEN RESET"),
    ("XGROUP", "CREATE CREATECONSUMER DELCONSUMER DESTROY HELP SETID"),
    ("XINFO", "CONSUMERS GROUPS HELP STREAM"),
];
// Redis Stack / Valkey module commands: PREFIX.NAME (FT.SEARCH, JSON.SET, BF.ADD, ...).
const REDIS_MODULES: &[&str] = &[
    "FT", "JSON", "BF", "CF", "CMS", "TOPK", "TDIGEST", "TS", "GRAPH", "AI", "SEARCH", "VSET",
];

fn redis_commands() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| REDIS_COMMANDS.split_whitespace().collect())
}

/// `(?i)(?:FT|JSON|...)\.[A-Z_]{1,32}`, whole (Python's IGNORECASE folds, see `ci_letter`).
fn redis_module_command(word: &[char]) -> bool {
    let Some(dot) = word.iter().position(|&c| c == '.') else {
        return false;
    };
    let (prefix, tail) = (&word[..dot], &word[dot + 1..]);
    let letter = |c: char| c == '_' || ('A'..='Z').any(|l| ci_letter(c, l));
    REDIS_MODULES.iter().any(|m| {
        m.len() == prefix.len() && m.chars().zip(prefix).all(|(l, &c)| ci_letter(c, l))
    }) && (1..=32).contains(&tail.len())
        && tail.iter().all(|&c| letter(c))
}

fn redis_command_word(word: &[char]) -> bool {
    ascii_upper(word).is_some_and(|u| redis_commands().contains(u.as_str()))
        || redis_module_command(word)
}

fn redis(text: &[char]) -> Read {
    let mut out = String::new();
    for (sep, words) in redis_split(text)? {
        let (command, bare) = words[0];
        let keep = bare && redis_command_word(command);
        let mut parts: Vec<&str> = Vec::with_capacity(words.len());
        let command_text: String = command.iter().collect();
        parts.push(if keep { &command_text } else { "?" });
        let mut rest = &words[1..];
        let upper = ascii_upper(command).unwrap_or_default();
        let subs = if keep { REDIS_SUBCOMMANDS.iter().find(|(c, _)| *c == upper) } else { None };
        let sub_text: String;
        if let (Some((_, subs)), Some(&(sub, true))) = (subs, rest.first()) {
            if ascii_upper(sub).is_some_and(|u| subs.split(' ').any(|s| s == u)) {
                sub_text = sub.iter().collect();
                parts.push(&sub_text);
                rest = &rest[1..];
            }
        }
        parts.extend(rest.iter().map(|_| "?"));
        if !out.is_empty() {
            out.push_str(if sep == '\n' { "\n" } else { "; " });
        }
        out.push_str(&parts.join(" "));
    }
    Ok(out)
}

type RedisCommand<'a> = (char, Vec<(&'a [char], bool)>);

/// Commands as (separator before it, [(word, is_bare)]); a quoted word's text is not kept.
fn redis_split(text: &[char]) -> Result<Vec<RedisCommand<'_>>, Unparseable> {
    let mut commands: Vec<RedisCommand<'_>> = Vec::new();
    let mut words: Vec<(&[char], bool)> = Vec::new();
    let mut sep = '\0';
    let n = text.len();
    let mut i = 0;
    while i < n {
        let c = text[i];
        if c == '\n' || c == ';' {
            if !words.is_empty() {
                commands.push((sep, std::mem::take(&mut words)));
                sep = c;
            } else if !commands.is_empty() && c == '\n' {
                sep = c; // a newline wins over ";" as the separator shown
            }
            i += 1;
        } else if is_space(c) {
            while i < n && is_space(text[i]) && text[i] != '\n' {
                i += 1;
            }
        } else if c == '"' || c == '\'' {
            i = redis_quoted(text, i)?;
            if i < n && !(is_space(text[i]) || text[i] == ';') {
                return Err(Unparseable); // redis-cli: a closing quote must end the argument
            }
            words.push((&[], false));
        } else {
            let mut j = i;
            while j < n && !(is_space(text[j]) || text[j] == ';') {
                j += 1;
            }
            words.push((&text[i..j], true));
            i = j;
        }
    }
    if !words.is_empty() {
        commands.push((sep, words));
    }
    Ok(commands)
}

/// Index after the quoted argument at `i` (`"..."`: `\` escapes; `'...'`: only `\'`).
fn redis_quoted(text: &[char], i: usize) -> Result<usize, Unparseable> {
    let quote = text[i];
    let mut pos = i + 1;
    loop {
        let q = pos + text[pos..].iter().position(|&c| c == quote).ok_or(Unparseable)?;
        let mut k = q;
        while k > pos && text[k - 1] == '\\' {
            k -= 1;
        }
        let escaped = if quote == '"' { (q - k) % 2 == 1 } else { q > k };
        if !escaped {
            return Ok(q + 1);
        }
        pos = q + 1;
    }
}

// ---------------------------------------------------------------------------- Memcached

// Argument kinds: K key / V value -> ?, N kept if all digits, W kept if all digits or a
// protocol word, F meta flag -> its letter (+ "?" when it carries a token).
const MEMCACHED_WORDS: &[&str] = &[
    "noreply", "items", "slabs", "sizes", "settings", "detail", "conns", "extstore", "reset",
    "on", "off", "dump", "graceful", "enable", "disable", "start", "crawl", "metadump", "all",
    "hash", "automove", "reassign", "fetchers", "mutations", "evictions", "connevents",
];
const STORE: &str = "KNNN";

/// command -> (fixed kinds, kind of any further argument, is a storage command with data)
fn memcached_spec(command: &str) -> Option<(&'static str, char, bool)> {
    Some(match command {
        "set" | "add" | "replace" | "append" | "prepend" => (STORE, 'W', true),
        "cas" => ("KNNNN", 'W', true),
        "get" | "gets" => ("", 'K', false),
        "gat" | "gats" => ("N", 'K', false),
        "delete" => ("K", 'W', false),
        "incr" | "decr" => ("KV", 'W', false),
        "touch" => ("KN", 'W', false),
        "mg" | "md" | "ma" => ("K", 'F', false),
        "ms" => ("KN", 'F', true),
        "me" => ("K", 'V', false),
        "mn" | "version" | "quit" => ("", 'V', false),
        "stats" | "flush_all" | "verbosity" | "shutdown" | "cache_memlimit" | "lru_crawler"
        | "slabs" | "lru" | "watch" => ("", 'W', false),
        _ => return None,
    })
}

fn memcached_command(word: &[char]) -> Option<(&'static str, char, bool)> {
    memcached_spec(&ascii_lower(word)?)
}

fn memcached(text: &[char]) -> Read {
    let mut lines: Vec<String> = Vec::new();
    for line in text.split(|&c| c == '\n') {
        let words: Vec<&[char]> = line.split(|&c| is_space(c)).filter(|w| !w.is_empty()).collect();
        let Some(&command) = words.first() else {
            continue;
        };
        let Some((fixed, more, stores)) = memcached_command(command) else {
            if lines.is_empty() {
                return Err(Unparseable);
            }
            break; // what follows cannot be accounted for: dropped, never shown
        };
        let mut out: String = command.iter().collect();
        for (k, word) in words[1..].iter().enumerate() {
            out.push(' ');
            memcached_arg(fixed.chars().nth(k).unwrap_or(more), word, &mut out);
        }
        lines.push(out);
        if stores {
            break; // the data block (and anything after it) is dropped
        }
    }
    Ok(lines.join("\n"))
}

fn memcached_arg(kind: char, word: &[char], out: &mut String) {
    let digits = (1..=20).contains(&word.len()) && word.iter().all(|c| c.is_ascii_digit());
    let kept = match kind {
        'N' => digits,
        'W' => digits || MEMCACHED_WORDS.iter().any(|w| w.chars().eq(word.iter().copied())),
        'F' => {
            out.push(if word[0].is_ascii_alphabetic() { word[0] } else { '?' });
            if word.len() > 1 {
                out.push('?');
            }
            return;
        }
        _ => false,
    };
    if kept {
        out.extend(word.iter());
    } else {
        out.push('?');
    }
}

// ---------------------------------------------------------------------------- span names

const SQL_VERBS: &[&str] = &[
    "ALTER", "ANALYZE", "BEGIN", "CALL", "COMMIT", "COPY", "CREATE", "DEALLOCATE", "DECLARE",
    "DELETE", "DESCRIBE", "DROP", "EXEC", "EXECUTE", "EXPLAIN", "GRANT", "INSERT", "LOCK",
    "MERGE", "PRAGMA", "PREPARE", "RELEASE", "RENAME", "REPLACE", "REVOKE", "ROLLBACK",
    "SAVEPOINT", "SELECT", "SET", "SHOW", "TRUNCATE", "UNLOCK", "UPDATE", "UPSERT", "USE",
    "VACUUM", "VALUES", "WITH",
];
const SQL_STRUCTURE: &[&str] = &["FROM", "INTO", "WHERE", "SET", "VALUES", "JOIN", "TABLE"];

/// `\b(?:FROM|INTO|WHERE|SET|VALUES|JOIN|TABLE)\b` found anywhere (Unicode `\b`).
fn sql_structure(name: &[char]) -> bool {
    let boundary = |k: usize| !name.get(k).is_some_and(|&c| is_word(c));
    (0..name.len()).any(|p| {
        (p == 0 || boundary(p - 1))
            && SQL_STRUCTURE.iter().any(|kw| {
                let end = p + kw.len();
                end <= name.len() && kw.chars().zip(&name[p..end]).all(|(a, &b)| a == b) && boundary(end)
            })
    })
}

/// A semantic-convention summary: `[A-Za-z_][\w$]*` names, `.`-qualified, one space apart.
fn summary(name: &[char]) -> bool {
    name.split(|&c| c == ' ').all(|piece| {
        piece.split(|&c| c == '.').all(|part| {
            part.first().is_some_and(|&c| c.is_ascii_alphabetic() || c == '_')
                && part[1..].iter().all(|&c| is_word(c) || c == '$')
        })
    })
}

/// `name` with its literals replaced if it is a statement of `system`; else `name`
/// (`statements.sanitize_span_name`).
pub fn sql_span_name(name: &str, system: Option<&str>) -> String {
    let chars: Vec<char> = name.chars().collect();
    let fam = family(system);
    if is_statement_name(&chars, fam.0, system.is_some_and(|s| !s.is_empty())) {
        sanitize_with(&chars, fam)
    } else {
        name.to_string()
    }
}

fn is_statement_name(name: &[char], family: Family, has_system: bool) -> bool {
    // `\s*([A-Za-z_]+)`: the first word, and where it ends.
    let start = name.len() - lstrip(name).len();
    let end = start + name[start..].iter().take_while(|c| c.is_ascii_alphabetic() || **c == '_').count();
    let word = &name[start..end];
    let token = lstrip(name).split(|&c| is_space(c)).next().unwrap_or(&[]);
    match family {
        Family::Sql => {
            let upper: String = word.iter().map(|c| c.to_ascii_uppercase()).collect();
            if !SQL_VERBS.contains(&upper.as_str()) || summary(name) {
                return false;
            }
            // No db.system: only an upper-case statement with SQL structure is taken for one.
            let is_upper = word.iter().all(|c| !c.is_ascii_lowercase());
            has_system || (is_upper && sql_structure(name))
        }
        Family::Redis => !token.is_empty() && redis_command_word(token),
        Family::Memcached => memcached_command(token).is_some(),
        Family::Mongodb | Family::Json => {
            let head = lstrip(name).first();
            matches!(head, Some('{' | '['))
                || (family == Family::Mongodb
                    && !word.is_empty()
                    && is_mongo_command(word)
                    && matches!(lstrip(&name[end..]).first(), Some('{' | '[')))
        }
    }
}
