"""Credentials by reference: ``--secret aws-secretsmanager://ID``, ``env://PREFIX``, ``file:///x.json``.

A secret is a JSON object with at least ``username`` and ``password`` (more keys such as
``account``, ``role`` or ``private_key`` may be present). Its values live in a
:class:`Secret`, whose ``repr`` and ``str`` are masked, so a secret that ends up in a log
line, an exception or a traceback shows ``***``. Plans and tasks carry the reference, never
the value: every worker resolves it itself.
"""

from stageless.secrets.providers import resolve_secret, scheme_of_secret
from stageless.secrets.secret import Secret

__all__ = ["Secret", "resolve_secret", "scheme_of_secret"]
