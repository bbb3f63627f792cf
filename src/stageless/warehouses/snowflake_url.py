"""``snowflake://ACCOUNT/DATABASE[/SCHEMA]?warehouse=WH&role=ROLE`` and Snowflake's names.

Pure functions (no driver import), so they are tested alone and a bad URL is reported
before anything connects. Identifiers follow Snowflake's rules: an unquoted name folds to
upper case (``sales`` is ``SALES``); a name in double quotes is kept exactly as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from stageless.errors import UserError

#: what an unquoted Snowflake identifier may look like (it then folds to upper case)
_UNQUOTED = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")
#: account identifiers: orgname-accountname, or a locator with region and cloud parts
_ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")

DEFAULT_SCHEMA = "PUBLIC"
#: seconds the driver keeps retrying a login before giving up
DEFAULT_LOGIN_TIMEOUT = 60
#: seconds the driver keeps retrying any other request (transient 5xx, 429, resets)
DEFAULT_NETWORK_TIMEOUT = 300

_USAGE = "snowflake://ACCOUNT/DATABASE[/SCHEMA]?warehouse=WH&role=ROLE"
_OPTIONS = (
    "warehouse",
    "role",
    "host",
    "port",
    "protocol",
    "login_timeout",
    "network_timeout",
)
_CREDENTIALS = frozenset(
    {"user", "username", "password", "passwd", "pwd", "token", "private_key", "secret"}
)


def fold_identifier(text: str) -> str:
    """A name as Snowflake understands it: ``"Exact Name"`` as written, else upper case.

    Names that could not be written unquoted (``loan book``) are kept as they are: they
    must be quoted in SQL anyway, and upper-casing them would surprise.
    """
    text = text.strip()
    if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        inner = text[1:-1]
        if not inner or '"' in inner.replace('""', ""):
            raise UserError(f"identifier {text!r} has an unbalanced double quote")
        return inner.replace('""', '"')
    if text.startswith('"'):
        raise UserError(f"identifier {text!r} has an unbalanced double quote")
    if _UNQUOTED.match(text):
        return text.upper()
    return text


def is_plain(name: str) -> bool:
    """True when NAME reads the same unquoted (upper case, no special characters)."""
    return bool(_UNQUOTED.match(name)) and name == name.upper()


def url_identifier(name: str) -> str:
    """NAME written for a URL path so that :func:`fold_identifier` gives it back."""
    written = name if is_plain(name) else '"' + name.replace('"', '""') + '"'
    return quote(written, safe="")


@dataclass(frozen=True)
class SnowflakeTarget:
    """Where to connect, parsed from a URL; holds no credential."""

    account: str
    database: str  # exact name (already folded)
    schema: str  # exact name (already folded)
    warehouse: str | None = None
    role: str | None = None
    host: str | None = None
    port: int | None = None
    protocol: str | None = None
    login_timeout: int = DEFAULT_LOGIN_TIMEOUT
    network_timeout: int = DEFAULT_NETWORK_TIMEOUT

    @property
    def url(self) -> str:
        """The canonical URL: parses back to this target; safe to print and to record."""
        path = "/".join(url_identifier(n) for n in (self.database, self.schema))
        query = [
            (key, str(value))
            for key, value in (
                ("warehouse", self.warehouse),
                ("role", self.role),
                ("host", self.host),
                ("port", self.port),
                ("protocol", self.protocol),
            )
            if value is not None
        ]
        if self.login_timeout != DEFAULT_LOGIN_TIMEOUT:
            query.append(("login_timeout", str(self.login_timeout)))
        if self.network_timeout != DEFAULT_NETWORK_TIMEOUT:
            query.append(("network_timeout", str(self.network_timeout)))
        suffix = f"?{urlencode(query)}" if query else ""
        return f"snowflake://{self.account}/{path}{suffix}"

    def connect_options(self) -> dict[str, object]:
        """Keyword arguments for ``snowflake.connector.connect`` (without credentials)."""
        options: dict[str, object] = {
            "account": self.account,
            "login_timeout": self.login_timeout,
            "network_timeout": self.network_timeout,
        }
        for key in ("warehouse", "role", "host", "port", "protocol"):
            value = getattr(self, key)
            if value is not None:
                options[key] = value
        return options


def parse_snowflake_url(url: str) -> SnowflakeTarget:
    """Parse a ``snowflake://`` URL; every mistake is a one-line UserError."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise UserError(f"Snowflake URL is malformed; write {_USAGE}") from None
    if parts.scheme.lower() != "snowflake":
        raise UserError(f"not a Snowflake URL; write {_USAGE}")
    if "@" in parts.netloc:
        raise UserError(
            "a Snowflake URL must not carry credentials: put them in a secret and pass "
            "--secret aws-secretsmanager://ID, env://PREFIX or file:///path.json"
        )
    account = unquote(parts.netloc).strip()
    if not account:
        raise UserError(f"Snowflake URL names no account; write {_USAGE}")
    if not _ACCOUNT.match(account):
        raise UserError(
            f"Snowflake account {account!r} is not an account identifier "
            "(like myorg-myaccount or xy12345.us-east-1)"
        )
    segments = [unquote(s) for s in parts.path.split("/")[1:]] if parts.path else []
    while segments and segments[-1] == "":
        segments.pop()  # a trailing slash
    if not segments or not segments[0].strip():
        raise UserError(f"Snowflake URL names no database; write {_USAGE}")
    if len(segments) > 2 or any(not s.strip() for s in segments):
        raise UserError(f"Snowflake URL path must be /DATABASE or /DATABASE/SCHEMA; write {_USAGE}")
    database = fold_identifier(segments[0])
    schema = fold_identifier(segments[1]) if len(segments) == 2 else DEFAULT_SCHEMA

    options: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        name = key.lower()
        if name in _CREDENTIALS:
            raise UserError(
                f"a Snowflake URL must not carry credentials ({key}=...): pass --secret instead"
            )
        if name not in _OPTIONS:
            raise UserError(f"unknown Snowflake URL option {key!r}; use {', '.join(_OPTIONS)}")
        if not value.strip():
            raise UserError(f"Snowflake URL option {key} is empty")
        options[name] = value.strip()
    protocol = options.get("protocol")
    if protocol is not None and protocol.lower() not in ("http", "https"):
        raise UserError(f"Snowflake URL protocol must be http or https, not {protocol!r}")
    return SnowflakeTarget(
        account=account,
        database=database,
        schema=schema,
        warehouse=options.get("warehouse"),
        role=options.get("role"),
        host=options.get("host"),
        port=_integer(options, "port", 1, 65535),
        protocol=protocol.lower() if protocol else None,
        login_timeout=_integer(options, "login_timeout", 1, 3600) or DEFAULT_LOGIN_TIMEOUT,
        network_timeout=_integer(options, "network_timeout", 1, 86400) or DEFAULT_NETWORK_TIMEOUT,
    )


def _integer(options: dict[str, str], key: str, low: int, high: int) -> int | None:
    if key not in options:
        return None
    text = options[key]
    if not text.isdigit() or not low <= int(text) <= high:
        raise UserError(f"Snowflake URL option {key} must be a whole number from {low} to {high}")
    return int(text)
