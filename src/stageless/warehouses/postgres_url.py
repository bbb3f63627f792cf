"""PostgreSQL and Redshift URLs: what the user typed -> what libpq connects with.

``postgresql://[user[:password]@]host[:port]/database[?libpq-params]`` (also ``postgres://``)
and ``redshift://...`` (the same, default port 5439). Credentials come from ``--secret``
(its ``username`` and ``password`` win) or from the URL. The libpq URI built here carries
the password, so it only ever lives in memory: what is printed or recorded is
:attr:`PostgresTarget.display_url`, which masks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from stageless.errors import UserError
from stageless.warehouses.registry import redact_url

SCHEMES = ("postgresql", "postgres", "redshift")
DEFAULT_PORTS = {"postgresql": 5432, "postgres": 5432, "redshift": 5439}

#: Connection settings stageless adds unless the URL sets them. A dead or firewalled host
#: fails within seconds instead of the operating system's TCP timeout (minutes).
DEFAULT_PARAMS = {"connect_timeout": "10", "application_name": "stageless"}

#: What a redacted URL shows instead of a password.
MASK = "***"


@dataclass(frozen=True)
class PostgresTarget:
    """A parsed URL: where to connect and, if the URL had them, which credentials."""

    scheme: str
    host: str  # as written, IPv6 brackets kept; "" means libpq's default (a local socket)
    port: int | None
    database: str | None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    params: tuple[tuple[str, str], ...] = ()
    display_url: str = ""

    @property
    def is_redshift(self) -> bool:
        return self.scheme == "redshift"

    def libpq_uri(self, user: str | None, password: str | None) -> str:
        """The URI handed to libpq (through ADBC): holds the password, never shown."""
        userinfo = ""
        if user:
            userinfo = quote(user, safe="")
            if password:
                userinfo += ":" + quote(password, safe="")
            userinfo += "@"
        port = self.port if self.port is not None else DEFAULT_PORTS[self.scheme]
        host = f"{self.host}:{port}" if self.host else ""
        params = dict(DEFAULT_PARAMS)
        params.update(self.params)
        query = urlencode(list(params.items()), quote_via=quote)
        return f"postgresql://{userinfo}{host}/{quote(self.database or '', safe='')}?{query}"


def parse_postgres_url(url: str) -> PostgresTarget:
    """Split a ``postgresql://``/``redshift://`` URL; errors never repeat a password."""
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UserError(
            f"cannot parse PostgreSQL URL {shown!r}: write "
            "postgresql://[user[:password]@]host[:port]/database"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UserError(f"{shown!r} is not a postgresql:// or redshift:// URL")
    if not parts.netloc and not parts.path.strip("/"):
        raise UserError(
            f"PostgreSQL URL {shown!r} names no server or database: write "
            "postgresql://[user[:password]@]host[:port]/database"
        )
    database = unquote(parts.path.lstrip("/")) or None
    if database and "/" in database:
        raise UserError(f"PostgreSQL URL {shown!r}: the path must be just the database name")
    params: list[tuple[str, str]] = []
    password = unquote(parts.password) if parts.password is not None else None
    user = unquote(parts.username) if parts.username else None
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        # libpq also takes them as parameters; keep them with the other credentials.
        if key == "password":
            password = value
        elif key == "user":
            user = value
        else:
            params.append((key, value))
    return PostgresTarget(
        scheme=scheme,
        host=parts.netloc.rpartition("@")[2].rsplit(":", 1)[0]
        if port is not None
        else parts.netloc.rpartition("@")[2],
        port=port,
        database=database,
        user=user,
        password=password,
        params=tuple(params),
        display_url=shown,
    )
