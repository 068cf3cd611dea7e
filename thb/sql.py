"""Quoting for SQL built from configuration and file headers (never from values).

>>> print(ident('a"b'), literal("it's"))
"a""b" 'it''s'
"""


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str | None) -> str:
    """A quoted SQL string literal (NULL for None)."""
    return "NULL" if value is None else "'" + str(value).replace("'", "''") + "'"
