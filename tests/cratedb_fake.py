"""A stand-in for one CrateDB node's HTTP endpoint (``POST /_sql``), for tests without CrateDB.

No CrateDB server can run where the tests run (no download, no Docker), so the CrateDB path is
driven against this fake. It replaces only the network: ``FakeCrateDB.connection()`` is
crate-python's real ``Connection`` over its real HTTP ``Client``, whose single I/O method,
``_request``, is answered in-process. Everything above that is the real code: repometer's
``Store``, SQLAlchemy, the sqlalchemy-cratedb dialect, crate-python's cursor, its JSON (and gzip)
request encoding and its mapping of error responses to DB-API exceptions.

The fake records every request as CrateDB would receive it (statement, ``args``, ``bulk_args``)
and keeps the least state that lets repometer read back what it wrote: the rows of each table by
primary key. It understands only the statement shapes repometer emits and raises
``NotImplementedError`` for anything else, so a new query fails loudly here instead of getting a
made-up answer. Syntax is not its job: tests check every recorded statement with CrateDB's own
grammar (cratedb-sqlparse).

What it copies from CrateDB, because repometer's correctness depends on it (CrateDB docs:
interfaces/http, concepts/storage-consistency, general/ddl/data-types):

- Reads are eventually consistent. A query sees a table as of its last ``REFRESH TABLE`` (this
  fake never refreshes on its own); only a lookup by the whole primary key (a "get") sees the
  latest writes. UPDATE and DELETE find their rows the same way.
- A bulk request (``bulk_args``) answers one row count per row, ``-2`` plus an ``error_message``
  for a row it refused, and succeeds as a whole: crate-python raises nothing for such rows.
- ``ON CONFLICT`` must name the primary key; primary-key and ``CLUSTERED BY`` columns cannot be
  updated; ``CLUSTERED BY`` must name a primary-key column; types must exist (no ``SERIAL``).
- A string that is indexed or kept in the column store may not exceed 32766 UTF-8 bytes.
- Timestamps come back as epoch milliseconds. NOT NULL and unknown tables or columns are errors.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from crate.client.connection import Connection
from crate.client.http import Client

VERSION = "6.1.1"  # the CrateDB release whose grammar cratedb-sqlparse 0.0.17 ships
MAX_TERM_BYTES = 32766  # Lucene's limit for one indexed term or one doc value
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DUPLICATE_KEY = "DuplicateKeyException[A document with the same primary key exists already]"
_TYPES = {
    "STRING", "TEXT", "VARCHAR", "CHARACTER VARYING", "BOOLEAN", "BYTE", "CHAR", "SHORT",
    "SMALLINT", "INT", "INTEGER", "LONG", "BIGINT", "REAL", "FLOAT", "DOUBLE", "DOUBLE PRECISION",
    "NUMERIC", "DECIMAL", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP WITHOUT TIME ZONE",
    "TIMESTAMPTZ", "DATE", "IP", "OBJECT", "GEO_POINT", "GEO_SHAPE",
}  # fmt: skip
_STRING_TYPES = {"STRING", "TEXT", "VARCHAR", "CHARACTER VARYING"}


class Request(NamedTuple):
    """One ``POST /_sql`` body as CrateDB receives it."""

    stmt: str
    args: list[Any] | None
    bulk_args: list[list[Any]] | None


class CrateError(Exception):
    """An error CrateDB answers with; its HTTP status is the first three digits of the code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return int(str(self.code)[:3])


@dataclass
class Column:
    name: str
    type: str
    not_null: bool
    whole_string_kept: bool  # a string column that is indexed or in the column store


@dataclass
class Table:
    name: str
    columns: dict[str, Column]
    primary_key: tuple[str, ...]
    clustered_by: str | None
    rows: dict[tuple, dict[str, Any]] = field(default_factory=dict)  # the latest writes
    searchable: dict[tuple, dict[str, Any]] = field(default_factory=dict)  # as of last REFRESH

    def key(self, row: dict[str, Any]) -> tuple:
        return tuple(row[c] for c in self.primary_key)

    def check(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row as CrateDB stores it, or the error it refuses the row with."""
        for name in row:
            if name not in self.columns:
                raise CrateError(4043, f"ColumnUnknownException[Column {name} unknown]")
        stored = {}
        for column in self.columns.values():
            value = row.get(column.name)
            if value is None and (column.not_null or column.name in self.primary_key):
                raise CrateError(4000, f'"{column.name}" must not be null')
            if value is not None and column.type.startswith("TIMESTAMP"):
                value = _epoch_millis(value)
            if (
                isinstance(value, str)
                and column.whole_string_kept
                and len(value.encode()) > MAX_TERM_BYTES
            ):
                raise CrateError(
                    4000,
                    f'Document contains at least one immense term in field="{column.name}" '
                    f"(whose UTF8 encoding is longer than the max length {MAX_TERM_BYTES})",
                )
            stored[column.name] = value
        return stored


def _epoch_millis(value: Any) -> int:
    if isinstance(value, int):
        return value
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - _EPOCH) // timedelta(milliseconds=1)


def _split(text: str) -> list[str]:
    """Split at the commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def _value(token: str, args: Sequence[Any]) -> Any:
    if match := re.fullmatch(r"\$(\d+)", token):
        return args[int(match[1]) - 1]
    if match := re.fullmatch(r"'((?:[^']|'')*)'", token):
        return match[1].replace("''", "'")
    if re.fullmatch(r"-?\d+", token):
        return int(token)
    literals = {"TRUE": True, "FALSE": False, "NULL": None}
    if token.upper() in literals:
        return literals[token.upper()]
    raise NotImplementedError(f"fake CrateDB: cannot evaluate {token!r}")


_CREATE = re.compile(r"CREATE TABLE (\w+) (\(.*)")
_DROP = re.compile(r"DROP TABLE (\w+)")
_REFRESH = re.compile(r"REFRESH TABLE (\w+(?:, \w+)*)")
_INSERT = re.compile(
    r"INSERT INTO (\w+) \(([^)]*)\) VALUES (.+?)"
    r"(?: ON CONFLICT \(([^)]*)\) DO (NOTHING|UPDATE SET (.+)))?"
)
_UPDATE = re.compile(r"UPDATE (\w+) SET (.+?) WHERE (.+)")
_DELETE = re.compile(r"DELETE FROM (\w+) WHERE (.+)")
_SELECT = re.compile(
    r"SELECT (DISTINCT )?(.+?)(?: FROM (.+?)(?: WHERE (.+?))?(?: GROUP BY (.+?))?"
    r"(?: ORDER BY (.+?))?)?"
)
_FROM = re.compile(r"([\w.]+)(?: JOIN (\w+) ON (.+))?")
_CONDITION = re.compile(r"([\w.]+) (?:(=|<>|!=|>=|<=|>|<) ('(?:[^']|'')*'|\S+)|IN \((.*)\))")
_COLUMN_REF = re.compile(r"(?:\w+\.)*([a-z_]\w*)")
_COMPARE = {
    "=": lambda a, b: a == b, "<>": lambda a, b: a != b, "!=": lambda a, b: a != b,
    ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
}  # fmt: skip

Plan = tuple[bool, Callable[[Sequence[Any]], dict[str, Any]]]
"""Whether the statement returns rows, and how to run it with one list of arguments."""


class FakeCrateDB:
    """One CrateDB node in memory: its tables, and every request it was sent."""

    def __init__(self) -> None:
        self.tables: dict[str, Table] = {}
        self.requests: list[Request] = []

    # -- what tests use -----------------------------------------------------------------

    def connection(self) -> Connection:
        """A DB-API connection to this node, for ``create_engine("crate://", creator=...)``."""
        return Connection(client=_Transport(self))

    @property
    def statements(self) -> list[str]:
        return [request.stmt for request in self.requests]

    def table_rows(self, name: str) -> list[dict[str, Any]]:
        """The latest rows of a table, in primary-key order."""
        table = self.tables[name]
        return [table.rows[key] for key in sorted(table.rows)]

    # -- the endpoint ---------------------------------------------------------------------

    def respond(
        self, stmt: str, args: list[Any] | None, bulk_args: list[list[Any]] | None
    ) -> tuple[int, dict[str, Any]]:
        """Answer one ``POST /_sql`` body: an HTTP status and a JSON document."""
        self.requests.append(Request(stmt, args, bulk_args))
        try:
            returns_rows, run = self._plan(stmt)
            if bulk_args is None:
                return 200, {"cols": [], "rows": [[]], **run(args or []), "duration": 0.1}
            if returns_rows:
                raise CrateError(
                    4004, "Bulk operations for statements that return result sets is not supported"
                )
            results = []
            for row_args in bulk_args:
                try:
                    results.append({"rowcount": run(row_args)["rowcount"]})
                except CrateError as exc:
                    results.append({"rowcount": -2, "error_message": exc.message})
            return 200, {"cols": [], "duration": 0.1, "results": results}
        except CrateError as exc:
            return exc.status, {"error": {"message": exc.message, "code": exc.code}}

    def _table(self, name: str) -> Table:
        if name not in self.tables:
            raise CrateError(4041, f"RelationUnknown[Relation '{name}' unknown]")
        return self.tables[name]

    def _plan(self, stmt: str) -> Plan:
        counter = iter(range(1, 10**6))
        sql = re.sub(r"\?", lambda _: f"${next(counter)}", " ".join(stmt.split()))
        for pattern, planner in (
            (_CREATE, self._plan_create),
            (_DROP, self._plan_drop),
            (_REFRESH, self._plan_refresh),
            (_INSERT, self._plan_insert),
            (_UPDATE, self._plan_update),
            (_DELETE, self._plan_delete),
            (_SELECT, self._plan_select),
        ):
            if match := pattern.fullmatch(sql):
                return planner(*match.groups())
        raise NotImplementedError(f"fake CrateDB: cannot answer {stmt!r}")

    # -- DDL --------------------------------------------------------------------------------

    def _plan_create(self, name: str, rest: str) -> Plan:
        depth = 0
        for end, char in enumerate(rest):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0:
                break
        body, options = rest[1:end], rest[end + 1 :]
        if name in self.tables:
            raise CrateError(4093, f"RelationAlreadyExists[Relation 'doc.{name}' already exists.]")
        columns: dict[str, Column] = {}
        primary_key: tuple[str, ...] = ()
        for element in _split(body):
            if match := re.fullmatch(r"PRIMARY KEY \((.*)\)", element):
                primary_key = tuple(c.strip() for c in match[1].split(","))
                continue
            column, spec = element.split(" ", 1)
            type_ = re.split(r" (?:NOT NULL|DEFAULT|GENERATED|INDEX|STORAGE)\b", spec)[0]
            if type_.upper() not in _TYPES and not re.fullmatch(r"(ARRAY|OBJECT)\b.*", type_):
                raise CrateError(4000, f"Cannot find data type: {type_.lower()}")
            whole_string_kept = type_.upper() in _STRING_TYPES and not (
                "INDEX OFF" in spec and "columnstore = false" in spec
            )
            columns[column] = Column(column, type_.upper(), "NOT NULL" in spec, whole_string_kept)
        clustered = re.search(r"CLUSTERED BY \((\w+)\)", options)
        clustered_by = clustered[1] if clustered else None
        if primary_key and clustered_by and clustered_by not in primary_key:
            raise CrateError(
                4000, f"Clustered by column `{clustered_by}` must be part of primary key"
            )

        def run(_args: Sequence[Any]) -> dict[str, Any]:
            self.tables[name] = Table(name, columns, primary_key, clustered_by)
            return {"rowcount": 1}

        return False, run

    def _plan_drop(self, name: str) -> Plan:
        self._table(name)

        def run(_args: Sequence[Any]) -> dict[str, Any]:
            del self.tables[name]
            return {"rowcount": 1}

        return False, run

    def _plan_refresh(self, names: str) -> Plan:
        tables = [self._table(name.strip()) for name in names.split(",")]

        def run(_args: Sequence[Any]) -> dict[str, Any]:
            for table in tables:
                table.searchable = dict(table.rows)
            return {"rowcount": len(tables)}

        return False, run

    # -- DML --------------------------------------------------------------------------------

    def _plan_insert(
        self, name: str, columns: str, values: str, target: str | None, action: str | None,
        assignments: str | None,
    ) -> Plan:  # fmt: skip
        table = self._table(name)
        names = [c.strip() for c in columns.split(",")]
        tuples = [_split(group) for group in re.findall(r"\(([^()]*)\)", values)]
        updates = self._assignments(table, assignments) if assignments else []
        if target is not None and {c.strip() for c in target.split(",")} != set(table.primary_key):
            raise CrateError(
                4000, f"Conflict target ({target}) did not match the primary key columns"
            )

        def run(args: Sequence[Any]) -> dict[str, Any]:
            count = 0
            for tokens in tuples:
                given = {c: _value(token, args) for c, token in zip(names, tokens, strict=True)}
                row = table.check(given)
                key = table.key(row)
                if key not in table.rows:  # a primary-key lookup: sees the latest writes
                    table.rows[key] = row
                elif action is None:
                    raise CrateError(4091, _DUPLICATE_KEY)
                elif action == "NOTHING":
                    continue
                else:
                    updated = dict(table.rows[key])
                    for column, token in updates:
                        excluded = re.fullmatch(r"excluded\.(\w+)", token)
                        updated[column] = row[excluded[1]] if excluded else _value(token, args)
                    table.rows[key] = table.check(updated)
                count += 1
            return {"rowcount": count}

        return False, run

    def _assignments(self, table: Table, text: str) -> list[tuple[str, str]]:
        pairs = [tuple(part.split(" = ", 1)) for part in _split(text)]
        for column, _ in pairs:
            if column in table.primary_key or column == table.clustered_by:
                raise CrateError(4000, f"Cannot update primary key or CLUSTERED BY column {column}")
            if column not in table.columns:
                raise CrateError(4043, f"ColumnUnknownException[Column {column} unknown]")
        return pairs  # type: ignore[return-value]

    def _plan_update(self, name: str, assignments: str, where: str) -> Plan:
        table = self._table(name)
        updates = self._assignments(table, assignments)

        def run(args: Sequence[Any]) -> dict[str, Any]:
            found = [table.key(row) for row in self._matching(table, where, args)]
            keys = [key for key in found if key in table.rows]  # gone since the last refresh
            for key in keys:
                updated = dict(table.rows[key])
                updated.update({column: _value(token, args) for column, token in updates})
                table.rows[key] = table.check(updated)
            return {"rowcount": len(keys)}

        return False, run

    def _plan_delete(self, name: str, where: str) -> Plan:
        table = self._table(name)

        def run(args: Sequence[Any]) -> dict[str, Any]:
            found = [table.key(row) for row in self._matching(table, where, args)]
            keys = [key for key in found if key in table.rows]  # gone since the last refresh
            for key in keys:
                del table.rows[key]
            return {"rowcount": len(keys)}

        return False, run

    def _matching(self, table: Table, where: str | None, args: Sequence[Any]) -> list[dict]:
        """The rows a WHERE clause finds: by a "get" if it fixes the whole key, else a search.

        A search reads the table as of its last refresh, rows deleted since included.
        """
        conditions = _conditions(where, args)
        equal = {_COLUMN_REF.fullmatch(ref)[1] for ref, op, _ in conditions if op == "="}
        get = bool(table.primary_key) and set(table.primary_key) <= equal
        source = table.rows if get else table.searchable
        return [
            row
            for row in source.values()
            if all(_holds(_view([(table.name, row)]), *c) for c in conditions)
        ]

    # -- queries ----------------------------------------------------------------------------

    def _plan_select(
        self, distinct: str | None, items: str, source: str | None, where: str | None,
        group_by: str | None, order_by: str | None,
    ) -> Plan:  # fmt: skip
        joined = _FROM.fullmatch(source) if source else None
        if source is not None and joined is None:
            raise NotImplementedError(f"fake CrateDB: cannot read from {source!r}")
        if joined and joined[1] == "information_schema.tables":
            left = self._information_schema()
        elif joined:
            left = self._table(joined[1])
        right = self._table(joined[2]) if joined and joined[2] else None
        outputs = []
        for item in _split(items):
            expression, _, label = item.partition(" AS ")
            ref = _COLUMN_REF.fullmatch(expression)
            outputs.append((label.strip('"') or (ref[1] if ref else expression), expression))
        groups = _split(group_by) if group_by else []
        aggregated = bool(groups) or any(
            not _COLUMN_REF.fullmatch(e) and not e.isdigit() for _, e in outputs
        )

        def value(view: dict[str, Any], expression: str) -> Any:
            return int(expression) if expression.isdigit() else _ref(view, expression)

        def run(args: Sequence[Any]) -> dict[str, Any]:
            if not joined:
                views = [{}]
            elif right is None:
                views = [_view([(left.name, row)]) for row in self._matching(left, where, args)]
            else:  # a join is a search on both sides
                on = [tuple(part.split(" = ")) for part in joined[3].split(" AND ")]
                conditions = _conditions(where, args)
                pairs = (
                    _view([(left.name, a), (right.name, b)])
                    for a in left.searchable.values()
                    for b in right.searchable.values()
                )
                views = [
                    v
                    for v in pairs
                    if all(_ref(v, x) == _ref(v, y) for x, y in on)
                    and all(_holds(v, *c) for c in conditions)
                ]
            for order in reversed(_split(order_by) if order_by else []):
                ref, _, direction = order.partition(" ")
                views.sort(key=lambda v, r=ref: _ref(v, r), reverse=direction == "DESC")
            if aggregated:
                grouped: dict[tuple, list[dict]] = {}
                for view in views:
                    grouped.setdefault(tuple(_ref(view, g) for g in groups), []).append(view)
                result = [
                    [
                        value(members[0], e) if _COLUMN_REF.fullmatch(e) or e.isdigit()
                        else _aggregate(e, members, args)
                        for _, e in outputs
                    ]
                    for members in (grouped.values() if groups else [views])
                ]  # fmt: skip
            else:
                result = [[value(view, e) for _, e in outputs] for view in views]
            if distinct:
                result = [list(r) for r in dict.fromkeys(tuple(r) for r in result)]
            cols = [label for label, _ in outputs]
            return {"cols": cols, "rows": result, "rowcount": len(result)}

        return True, run

    def _information_schema(self) -> Table:
        names = ("table_name", "table_schema", "table_type")
        columns = {c: Column(c, "STRING", True, True) for c in names}
        rows = {
            (name,): {"table_name": name, "table_schema": "doc", "table_type": "BASE TABLE"}
            for name in self.tables
        }
        return Table("information_schema.tables", columns, ("table_name",), None, rows, dict(rows))


def _view(sources: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """A row as expressions see it: ``table.column``, and ``column`` where unambiguous."""
    view: dict[str, Any] = {}
    names = [column for _, row in sources for column in row]
    for table, row in sources:
        for column, value in row.items():
            view[f"{table}.{column}"] = value
            if names.count(column) == 1:
                view[column] = value
    return view


def _ref(view: dict[str, Any], ref: str) -> Any:
    if ref not in view:
        raise CrateError(4043, f"ColumnUnknownException[Column {ref} unknown]")
    return view[ref]


def _conditions(where: str | None, args: Sequence[Any]) -> list[tuple[str, str, list[Any]]]:
    """A conjunction of comparisons as (column, operator, values)."""
    conditions = []
    for condition in where.split(" AND ") if where else []:
        match = _CONDITION.fullmatch(condition)
        if match is None:
            raise NotImplementedError(f"fake CrateDB: cannot evaluate {condition!r}")
        ref, op, single, many = match.groups()
        tokens = [single] if single is not None else _split(many)
        conditions.append((ref, op or "IN", [_value(token, args) for token in tokens]))
    return conditions


def _holds(view: dict[str, Any], ref: str, op: str, values: list[Any]) -> bool:
    left = _ref(view, ref)
    if op == "IN":
        return left in values
    return left is not None and values[0] is not None and _COMPARE[op](left, values[0])


def _aggregate(expression: str, rows: list[dict[str, Any]], args: Sequence[Any]) -> Any:
    if expression == "count(*)":
        return len(rows)
    if match := re.fullmatch(r"count\(DISTINCT ([\w.]+)\)", expression):
        return len({_ref(row, match[1]) for row in rows} - {None})
    if match := re.fullmatch(r"coalesce\((.+), (\S+)\)", expression):
        value = _aggregate(match[1], rows, args)
        return _value(match[2], args) if value is None else value
    if match := re.fullmatch(r"sum\(([\w.]+)\)", expression):
        values = [_ref(row, match[1]) for row in rows]
        values = [v for v in values if v is not None]
        return sum(values) if values else None
    if match := re.fullmatch(r"sum\(CASE WHEN ([\w.]+) THEN (\S+) ELSE (\S+) END\)", expression):
        column, then, otherwise = match.groups()
        values = [_value(then if _ref(row, column) else otherwise, args) for row in rows]
        return sum(values) if values else None
    raise NotImplementedError(f"fake CrateDB: cannot evaluate {expression!r}")


class _Response:
    """What crate-python reads from a urllib3 response."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.reason = "OK" if status == 200 else "Error"
        self.headers = {"content-type": "application/json; charset=UTF-8"}
        self.data = json.dumps(body).encode()

    def get_redirect_location(self) -> bool:
        return False


class _Transport(Client):
    """crate-python's HTTP client with the network replaced by ``FakeCrateDB.respond``."""

    def __init__(self, node: FakeCrateDB) -> None:
        super().__init__(servers=["http://fake-cratedb:4200"])
        self._node = node

    def _request(self, method: str, path: str, server: str | None = None, **kwargs: Any) -> Any:
        if method == "GET" and path == "/":
            return _Response(200, {"name": "fake-node", "version": {"number": VERSION}})
        if method == "POST" and path.startswith("/_sql"):
            data = kwargs["data"]
            if kwargs.get("headers", {}).get("Content-Encoding") == "gzip":
                data = gzip.decompress(data)
            body = json.loads(data)
            return _Response(
                *self._node.respond(body["stmt"], body.get("args"), body.get("bulk_args"))
            )
        raise NotImplementedError(f"fake CrateDB: no endpoint {method} {path}")
