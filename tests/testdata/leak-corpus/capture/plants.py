"""The planted values of the leak corpus: one catalogue, read by every capture program.

Strategy: every value planted into the corpus is declared here once, with an id and what
it is. Where the format allows, the value carries its id as a token (``plant0042``), so a
surviving fragment still names its plant; IPs and card numbers cannot, so each is unique
and none is a prefix of another (fixed-width last parts). The Python capture imports this
module; the Node, Go and Java programs read ``plants.tsv`` (id, kind, value; ``\\n`` escaped),
which ``python plants.py`` writes. ``make_planted.py`` finds each value in the captured
files and writes ``../planted.yaml``.

All addresses are documentation ranges (203.0.113.0/24, 2001:db8::/32, example.com) and
all credentials are fakes of the right shape.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def luhn_card(n: int) -> str:
    """A 16-digit Visa-shaped number unique to ``n`` that passes the Luhn check."""
    body = f"400000{n:04d}00000"
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # doubled: the check digit will sit to the right of this one
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def ipv4(n: int) -> str:
    return f"203.0.113.{100 + n}"  # 100..199: three digits, no prefix clashes


def ipv6(n: int) -> str:
    return f"2001:db8::7:{n:04x}"


PLANTS: dict[str, tuple[str, str]] = {}  # id -> (kind, value)


def plant(pid: str, kind: str, value: str) -> str:
    assert pid not in PLANTS, pid
    assert value not in {v for _, v in PLANTS.values()}, value
    PLANTS[pid] = (kind, value)
    return value


# --- OTel Python SDK: traces (00xx) -------------------------------------------------
plant("p0001", "email", "ada.plant0001@example.com")  # KeyError message -> exception.*, status.message
plant("p0002", "email", "ada.plant0002@example.com")  # span name
plant("p0003", "user id", "ad0003aa-1b7d-4c3e-9a61-0c2b9d7e4f10")  # id in a URL-shaped span name
plant("p0004", "email", "ada.plant0004@example.com")  # event name
plant("p0005", "ip", ipv4(1))  # event attribute free text
plant("p0006", "email", "ada.plant0006@example.com")  # link trace_state (Node: the Python exporter drops a link's)
plant("p0007", "user id", "usr_plant0007")  # span trace_state (inherited from the parent)
plant("p0008", "ip", ipv4(2))  # link attribute free text
plant("p0009", "email", "grace.plant0009@example.com")  # explicit set_status message
plant("p0010", "card", luhn_card(10))  # ValueError message in record_exception
plant("p0011", "email", "ada.plant0011@example.com")  # tracer (scope) name
plant("p0012", "ip", ipv4(3))  # tracer (scope) version
plant("p0013", "email", "ada.plant0013@example.com")  # schema_url query, percent-encoded
plant("p0014", "email", "ada.plant0014@example.com")  # url.full query value
plant("p0015", "user id", "usr_plant0015")  # user.id (hashed by the doctrine)
plant("p0016", "email", "ada.plant0016@example.com")  # resource attribute free text

# --- OTel Python SDK: logs (01xx) ------------------------------------------------------
plant("p0101", "email", "ada.plant0101@example.com")  # formatted log message (body)
plant("p0102", "user id", "usr_plant0102")  # extra={"user_id": ...}
plant("p0103", "ip", ipv4(4))  # extra={"client_ip": ...}
plant("p0104", "email", "ada.plant0104@example.com")  # extra={"cart": {"owner": ...}} nested
plant("p0105", "email", "ada.plant0105@example.com")  # logger (scope) name
plant("p0106", "email", "ada.plant0106@example.com")  # logger.exception: exception message
plant("p0107", "card", luhn_card(107))  # logger.exception: log message
plant("p0108", "message content", "plant0108: see you at the pier at nine")  # extra chat text
plant("p0109", "secret", "plant0109-reset-code")  # extra={"note": "... password=..."}

# --- OTel Python SDK: metrics (02xx) ---------------------------------------------------
plant("p0201", "email", "ada.plant0201@example.com")  # metric description
plant("p0202", "email", "ada.plant0202@example.com")  # metric unit
plant("p0203", "email", "ada.plant0203@example.com")  # data point attribute, innocuous key
plant("p0204", "ip", ipv4(5))  # data point attribute client.address
plant("p0205", "user id", "usr_plant0205")  # data point attribute user.id
plant("p0206", "ip", ipv6(0x206))  # gauge attribute
plant("p0207", "email", "ada.plant0207@example.com")  # exemplar filtered attribute
plant("p0208", "email", "ada.plant0208@example.com")  # meter (scope) name

# --- DB client spans (03xx) ------------------------------------------------------------
plant("p0301", "email", "ada.plant0301@example.com")  # postgres db.statement literal
plant("p0302", "secret", "plant0302hash")  # postgres db.statement literal
plant("p0303", "email", "ada.plant0303@example.com")  # span name that is a statement
plant("p0304", "ip", ipv4(6))  # mysql INSERT literal
plant("p0305", "phone", "+1 555 010 0305")  # mysql INSERT literal
plant("p0306", "email", "ada.plant0306@example.com")  # redis SET key
plant("p0307", "secret", "plant0307redispw")  # redis AUTH
plant("p0308", "session id", "sess_plant0308")  # redis HSET key (db.query.text)
plant("p0309", "ip", ipv4(7))  # redis HSET value
plant("p0310", "email", "ada.plant0310@example.com")  # mongodb JSON filter
plant("p0311", "email", "ada.plant0311@example.com")  # elasticsearch query body
plant("p0312", "email", "ada.plant0312@example.com")  # elasticsearch url.full query
plant("p0313", "email", "ada.plant0313@example.com")  # span name URL, percent-encoded
plant("p0314", "session id", "plant0314sess")  # memcached key
plant("p0315", "email", "ada.plant0315@example.com")  # db.query.text (new semconv) literal
plant("p0316", "user id", "usr_plant0316")  # span name path id (URL span name)

# --- AI SDK spans (04xx) ---------------------------------------------------------------
plant("p0401", "message content", "plant0401 my landlord keeps the deposit")  # gen_ai.prompt.0.content
plant("p0402", "message content", "plant0402 you can dispute the deposit")  # gen_ai.completion.0.content
plant("p0403", "message content", "plant0403 summarize my medical history")  # llm.prompts.0.content
plant("p0404", "email", "ada.plant0404@example.com")  # traceloop.entity.input JSON
plant("p0405", "message content", "plant0405 reset the password of my account")  # input.value
plant("p0406", "message content", "plant0406 here is how to reset it")  # output.value
plant("p0407", "message content", "plant0407 I was diagnosed last week")  # llm.input_messages.0...
plant("p0408", "message content", "plant0408 sorry to hear that")  # llm.output_messages.0...
plant("p0409", "message content", "plant0409 write to my ex")  # gen_ai.input.messages JSON
plant("p0410", "message content", "plant0410 dear ex")  # gen_ai.output.messages JSON
plant("p0411", "message content", "plant0411 you are the assistant of Ada")  # gen_ai.system_instructions
plant("p0412", "email", "ada.plant0412@example.com")  # email inside a prompt, innocuous key
# Vercel AI SDK (Node, real `ai` package with a mock model)
plant("p0421", "message content", "plant0421 draft a complaint to my employer")  # ai.prompt
plant("p0422", "message content", "plant0422 Dear HR")  # ai.response.text
plant("p0423", "email", "ada.plant0423@example.com")  # inside the prompt

# --- keys as data, typed values, secrets (05xx) ----------------------------------------
plant("p0501", "card", luhn_card(501))  # int attribute
plant("p0502", "email", "ada.plant0502@example.com")  # JSON-string attribute {"user":{"email"}}
plant("p0503", "email", "ada.plant0503@example.com")  # bytes attribute (UTF-8 text)
plant("p0504", "secret", "ghp_plant0504" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4")  # GitHub token
plant("p0505", "secret", "AKIAPLANT0505EXAMPLE")  # AWS access key id
plant("p0506", "secret", "plant0506pw")  # password=... in free text
plant("p0507", "secret", "MIIEvQIBADANplant0507BgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7")  # PEM body line
plant("p0508", "secret", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.plant0508SflKxwRJSMeKKF2QT4fwpMeJf36P")  # JWT
plant("p0509", "email", "ada.plant0509@example.com")  # kvlist KEY (log attribute)
plant("p0510", "ip", ipv4(8))  # kvlist KEY (log attribute)
plant("p0511", "email", "ada.plant0511@example.com")  # bytes log body
plant("p0512", "ip", ipv6(0x512))  # kvlist key in a structured body
plant("p0513", "card", luhn_card(513))  # int inside a kvlist
plant("p0514", "user id", "usr_plant0514")  # JSON-string attribute {"user":{"id"}}
plant("p0515", "secret", "plant0515-aws-secret-EXAMPLEKEY")  # aws_secret_access_key=... in free text

# --- OTel Node SDK (06xx) --------------------------------------------------------------
plant("p0601", "email", "ada.plant0601@example.com")  # recordException(new Error(...)) + setStatus
plant("p0602", "user id", "usr_plant0602")  # logs API body {user: {id}}
plant("p0603", "email", "ada.plant0603@example.com")  # logs API body {user: {email}}
plant("p0604", "email", "ada.plant0604@example.com")  # logs API body {err: {message, stack}}
plant("p0605", "email", "ada.plant0605@example.com")  # kvlist key (Node logs attributes)
plant("p0606", "email", "ada.plant0606@example.com")  # Uint8Array attribute (OTLP-JSON: base64)
plant("p0607", "ip", ipv4(9))  # span attribute free text
plant("p0608", "email", "ada.plant0608@example.com")  # span event name
plant("p0609", "secret", "plant0609-session-cookie")  # body {req: {headers: {cookie}}}

# --- structured loggers (10xx pino ... 16xx log4j2), the same fields for each ----------
LOGGERS = {"pino": 10, "winston": 11, "bunyan": 12, "structlog": 13, "zap": 14, "logrus": 15, "log4j2": 16}


def logger_plants(name: str) -> dict[str, str]:
    """The fields one logger writes (role -> value), planted under p{NN}{01..11}."""
    nn = LOGGERS[name]
    k = 10 + 4 * (nn - 10)  # four IPv4s per logger, from 203.0.113.110
    roles = {
        "err_email": ("email", f"ada.plant{nn}01@example.com"),  # err.message (and the stack)
        "bearer": ("secret", f"plant{nn}02tokA9f3kQ7zX1"),  # req.headers.authorization: Bearer ...
        "cookie": ("secret", f"plant{nn}03sess"),  # req.headers.cookie: sid=...
        "remote_ip": ("ip", ipv4(k)),  # req.remoteAddress
        "user_id": ("user id", f"usr_plant{nn}05"),  # user.id
        "user_email": ("email", f"grace.plant{nn}06@example.com"),  # user.email
        "user_name": ("name", f"Grace Plant{nn}07 Hopper"),  # user.name
        "ctx_ip6": ("ip", ipv6(nn * 0x100 + 8)),  # context.ip
        "session": ("session id", f"sess_plant{nn}09"),  # context.sessionId
        "msg_email": ("email", f"lin.plant{nn}10@example.com"),  # the log message itself
        "password": ("secret", f"plant{nn}11pw"),  # context.note: "... password=..."
        "fwd_ip": ("ip", ipv4(k + 1)),  # req.headers.x-forwarded-for
    }
    out = {}
    for i, (role, (kind, value)) in enumerate(roles.items(), start=1):
        out[role] = plant(f"p{nn}{i:02d}", kind, value)
    return out


LOGGER_PLANTS = {name: logger_plants(name) for name in LOGGERS}


def value(pid: str) -> str:
    return PLANTS[pid][1]


def write_tsv(path: Path) -> None:
    lines = [f"{pid}\t{kind}\t{v.replace(chr(92), chr(92) * 2).replace(chr(10), chr(92) + 'n')}"
             for pid, (kind, v) in PLANTS.items()]
    lines += [f"logger.{name}.{role}\t-\t{v}" for name, roles in LOGGER_PLANTS.items() for role, v in roles.items()]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    write_tsv(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "plants.tsv")
