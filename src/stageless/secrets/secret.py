"""The masked value type."""

from __future__ import annotations

from collections.abc import Mapping

from stageless.errors import UserError

REQUIRED_KEYS = ("username", "password")


class Secret:
    """Credential values that never print themselves."""

    __slots__ = ("_source", "_values")

    def __init__(self, values: Mapping[str, object], source: str = "secret") -> None:
        missing = [k for k in REQUIRED_KEYS if not isinstance(values.get(k), str) or not values[k]]
        if missing:
            raise UserError(
                f"{source} lacks {' and '.join(missing)}: a secret is a JSON object with "
                "at least username and password"
            )
        self._values = {str(k): v for k, v in values.items()}
        self._source = source

    @property
    def username(self) -> str:
        return str(self._values["username"])

    @property
    def password(self) -> str:
        return str(self._values["password"])

    def get(self, key: str, default: str | None = None) -> str | None:
        value = self._values.get(key, default)
        return None if value is None else str(value)

    def keys(self) -> list[str]:
        return list(self._values)

    def __repr__(self) -> str:
        return f"Secret({self._source}, keys={sorted(self._values)}, values=***)"

    __str__ = __repr__

    def __reduce__(self) -> object:
        raise TypeError("a Secret is never pickled or copied between processes")
