"""Request bodies -> a float32 matrix in the model's feature order; predictions -> bytes.

Pure functions with no web framework in sight, so each is tested alone. Every problem with
a request is a :class:`RequestError` carrying the HTTP status and a one-line message for
the client (the message may quote the client's own value back; the server's log never
does).

Formats (the SageMaker inference contract):

- ``text/csv``: one row per line, values in manifest order, no header; a first line equal
  to the feature names (any case) is skipped. An empty field is a missing value.
- ``application/json``: ``{"instances": [[...], ...]}`` (values by position) or
  ``{"records": [{"name": value, ...}, ...]}`` (by feature name, any order; a name left
  out is a missing value). ``null`` is a missing value; booleans count as 1 and 0.
- ``application/jsonlines``: one JSON array (by position) or object (by name) per line.

Answers (``Accept``): ``application/json`` (the default) ``{"predictions": [...]}``,
``text/csv`` one line per row, ``application/jsonlines`` one JSON value per line.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence

import numpy as np

CSV = "text/csv"
JSON = "application/json"
JSONLINES = "application/jsonlines"

#: Content types accepted for each format (parameters such as charset are ignored).
CONTENT_TYPES = {
    "text/csv": CSV,
    "application/csv": CSV,
    "application/json": JSON,
    "application/jsonlines": JSONLINES,
    "application/x-jsonlines": JSONLINES,
    "application/jsonl": JSONLINES,
}
#: Accept header media types -> the format we answer in.
_ANSWERS = {
    "application/json": JSON,
    "application/*": JSON,
    "*/*": JSON,
    "text/csv": CSV,
    "text/*": CSV,
    "application/jsonlines": JSONLINES,
    "application/x-jsonlines": JSONLINES,
    "application/jsonl": JSONLINES,
}
_NUMBER_TYPES = frozenset({int, float, bool, type(None)})
_SHOWN_CHARS = 40


class RequestError(Exception):
    """A bad request: the HTTP status and a one-line message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _shown(value: object) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else repr(value)
    if isinstance(value, bytes):
        text = repr(text)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def media_type(header: str | None) -> str:
    """The bare, lower-case media type of a Content-Type or one Accept entry."""
    return (header or "").split(";", 1)[0].strip().lower()


def request_format(content_type: str | None) -> str:
    """CSV, JSON or JSONLINES for a Content-Type header; 415 for anything else.

    A request without a Content-Type is read as CSV, as SageMaker's XGBoost container does.
    """
    media = media_type(content_type)
    if not media:
        return CSV
    fmt = CONTENT_TYPES.get(media)
    if fmt is None:
        raise RequestError(
            415,
            f"unsupported Content-Type {media!r}; send text/csv, application/json "
            "or application/jsonlines",
        )
    return fmt


def response_format(accept: str | None) -> str:
    """CSV, JSON or JSONLINES for an Accept header (JSON when absent or ``*/*``); else 406.

    The entry with the highest ``q`` wins; at equal ``q`` the first, except that a specific
    type beats a wildcard.
    """
    if not accept or not accept.strip():
        return JSON
    best, best_q, best_wild = None, 0.0, True
    for entry in accept.split(","):
        media, *params = (part.strip() for part in entry.split(";"))
        answer = _ANSWERS.get(media.lower())
        if answer is None:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        wild = "*" in media
        if q > best_q or (q == best_q and q > 0 and best_wild and not wild):
            best, best_q, best_wild = answer, q, wild
    if best is None:
        raise RequestError(
            406,
            f"cannot answer in {accept[:80]!r}; accept application/json, text/csv "
            "or application/jsonlines",
        )
    return best


# -- decoding ---------------------------------------------------------------------------
def decode(body: bytes, fmt: str, features: Sequence[str]) -> np.ndarray:
    """The rows of a request body as a C-ordered float32 matrix [rows, len(features)]."""
    if fmt == CSV:
        matrix = decode_csv(body, features)
    elif fmt == JSON:
        matrix = decode_json(body, features)
    else:
        matrix = decode_jsonlines(body, features)
    if matrix.shape[0] == 0:
        raise RequestError(400, "the request has no rows")
    return matrix


def decode_csv(body: bytes, features: Sequence[str]) -> np.ndarray:
    n = len(features)
    lines = [line for line in body.removeprefix(b"\xef\xbb\xbf").splitlines() if line.strip()]
    if lines and _is_header(lines[0], features):
        lines = lines[1:]
    if not lines:
        return np.empty((0, n), dtype=np.float32)
    commas = n - 1
    for number, line in enumerate(lines, start=1):
        if line.count(b",") != commas:
            _wrong_count(number, line.count(b",") + 1, features)
    # Fast path: every field is a plain number or empty; numpy parses them in C.
    values = [v or b"nan" for v in b",".join(lines).split(b",")]
    try:
        flat = np.array(values, dtype=np.float32)
    except (ValueError, OverflowError):
        flat = _csv_values_slowly(lines, features)
    return flat.reshape(len(lines), n)


def _is_header(line: bytes, features: Sequence[str]) -> bool:
    if len(line) > 64 * len(features) + 1024:
        return False
    try:
        fields = next(csv.reader([line.decode("utf-8")], skipinitialspace=True))
    except (UnicodeDecodeError, csv.Error, StopIteration):
        return False
    names = [f.strip().casefold() for f in fields]
    return names == [f.casefold() for f in features]


def _csv_values_slowly(lines: list[bytes], features: Sequence[str]) -> np.ndarray:
    """Field by field: quoted numbers and blank fields are fine; name the first bad value."""
    out = np.empty(len(lines) * len(features), dtype=np.float32)
    k = 0
    for number, line in enumerate(lines, start=1):
        for j, raw in enumerate(line.split(b",")):
            field = raw.strip()
            if len(field) >= 2 and field[:1] == field[-1:] == b'"':
                field = field[1:-1].strip()
            if not field:
                out[k] = np.nan
            else:
                try:
                    out[k] = float(field)
                except ValueError:
                    if number == 1 and not any(_is_number(v) for v in line.split(b",")):
                        raise RequestError(
                            400,
                            "the first line looks like a header but is not the model's "
                            f"feature names ({','.join(features)})",
                        ) from None
                    raise RequestError(
                        400,
                        f"row {number}, column {j + 1} ({features[j]}): "
                        f"{_shown(raw)} is not a number",
                    ) from None
            k += 1
    return out


def _is_number(field: bytes) -> bool:
    try:
        float(field.strip().strip(b'"'))
    except ValueError:
        return False
    return True


def _wrong_count(row: int, got: int, features: Sequence[str]) -> None:
    raise RequestError(
        400,
        f"row {row} has {got} values but the model takes {len(features)} "
        f"({_feature_list(features)})",
    )


def _feature_list(features: Sequence[str]) -> str:
    shown = ",".join(features[:30])
    return shown + (",..." if len(features) > 30 else "")


def _loads(text: bytes, where: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RequestError(400, f"{where} is not valid JSON: {detail[:120]}") from None


def decode_json(body: bytes, features: Sequence[str]) -> np.ndarray:
    document = _loads(body, "the body")
    if not isinstance(document, dict):
        raise RequestError(
            400, 'a JSON body must be an object: {"instances": [[...]]} or {"records": [{...}]}'
        )
    if "instances" in document:
        rows, key = document["instances"], "instances"
    elif "records" in document:
        rows, key = document["records"], "records"
    else:
        raise RequestError(
            400, 'a JSON body needs "instances" (rows of values) or "records" (rows by name)'
        )
    if not isinstance(rows, list):
        raise RequestError(400, f'"{key}" must be a list of rows')
    return rows_to_matrix(rows, features, row_word=f"{key}[", row_end="]", base=0)


def decode_jsonlines(body: bytes, features: Sequence[str]) -> np.ndarray:
    rows = []
    for number, line in enumerate(body.splitlines(), start=1):
        if line.strip():
            rows.append(_loads(line, f"line {number}"))
    return rows_to_matrix(rows, features, row_word="line ", row_end="", base=1)


def rows_to_matrix(
    rows: list[object], features: Sequence[str], row_word: str, row_end: str, base: int
) -> np.ndarray:
    """Rows that are lists (values by position) or objects (by feature name) -> float32."""
    n = len(features)
    if all(type(row) is list for row in rows):
        return _positional(rows, features, row_word, row_end, base)  # type: ignore[arg-type]
    exact, folded = _name_index(features)
    matrix = np.full((len(rows), n), np.nan, dtype=np.float32)
    for i, row in enumerate(rows):
        where = f"{row_word}{i + base}{row_end}"
        if type(row) is list:
            matrix[i] = _positional([row], features, row_word, row_end, i + base)[0]
        elif isinstance(row, dict):
            for name, value in row.items():
                j = exact.get(name)
                if j is None:
                    j = folded.get(name.casefold())
                if j is None:
                    raise RequestError(
                        400,
                        f"{where}: unknown feature {_shown(name)}; the model's features are "
                        f"{_feature_list(features)}",
                    )
                matrix[i, j] = _number(value, where, features[j])
        else:
            raise RequestError(
                400, f"{where} must be a list of values or an object of feature: value"
            )
    return matrix


def _name_index(features: Sequence[str]) -> tuple[dict[str, int], dict[str, int]]:
    """Exact names, and case-folded names where that is unambiguous."""
    exact = {name: j for j, name in enumerate(features)}
    folded: dict[str, list[int]] = {}
    for j, name in enumerate(features):
        folded.setdefault(name.casefold(), []).append(j)
    return exact, {key: js[0] for key, js in folded.items() if len(js) == 1}


def _positional(
    rows: list[list[object]], features: Sequence[str], row_word: str, row_end: str, base: int
) -> np.ndarray:
    n = len(features)
    for i, row in enumerate(rows):
        if len(row) != n:
            raise RequestError(
                400,
                f"{row_word}{i + base}{row_end} has {len(row)} values but the model takes "
                f"{n} ({_feature_list(features)})",
            )
    if {type(v) for row in rows for v in row} <= _NUMBER_TYPES:
        try:
            with np.errstate(over="ignore"):  # beyond float32's range is +-inf, as in CSV
                return np.array(rows, dtype=np.float32).reshape(len(rows), n)
        except OverflowError:  # an integer beyond float64's range: the careful path
            pass
    # Something is not a number: find it and say where.
    matrix = np.empty((len(rows), n), dtype=np.float32)
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            matrix[i, j] = _number(value, f"{row_word}{i + base}{row_end}", features[j])
    return matrix


def _number(value: object, where: str, feature: str) -> float:
    if value is None:
        return math.nan
    if type(value) in _NUMBER_TYPES:
        try:
            return float(value)  # type: ignore[arg-type]
        except OverflowError:
            return math.inf if value > 0 else -math.inf  # type: ignore[operator]
    raise RequestError(400, f"{where}, feature {feature}: {_shown(value)} is not a number")


# -- encoding ---------------------------------------------------------------------------
def encode(predictions: np.ndarray, fmt: str) -> bytes:
    """Predictions in the answer format.

    JSON: ``{"predictions": [...]}``; CSV: one line per row (a row's values
    comma-separated); JSON Lines: one JSON value per line. Values are printed exactly: a
    float32 prediction turned into a Python float and back gives the same float32.
    """
    values = predictions.tolist()
    if fmt == JSON:
        return json.dumps({"predictions": values}, separators=(",", ":")).encode()
    if fmt == CSV and predictions.ndim > 1:
        return ("\n".join(",".join(map(repr, row)) for row in values) + "\n").encode()
    if predictions.ndim > 1:  # JSON Lines
        return ("\n".join(json.dumps(row) for row in values) + "\n").encode()
    return ("\n".join(map(repr, values)) + "\n").encode()


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()
