"""CQL2 text filters (OGC API - Features Part 3) compiled to parameterised SQL.

Only the collection's queryables may be named (an allow-list: each maps to fixed SQL) and every
literal becomes a bind parameter, so a filter can never reach a column or a row the public may
not read. Supported: comparisons (= <> < > <= >=), AND/OR/NOT, LIKE, IN, BETWEEN, IS NULL,
CASEI, DATE and TIMESTAMP literals, property-to-property comparisons, and the spatial functions
S_INTERSECTS, S_DISJOINT, S_CONTAINS, S_WITHIN, S_TOUCHES, S_OVERLAPS, S_CROSSES, S_EQUALS on
WKT or BBOX literals (in ``filter-crs``, CRS84 by default).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import shapely.wkt
from shapely.errors import ShapelyError

from commons_map.errors import ValidationFailed
from commons_map.publish.collections import Collection
from commons_map.publish.crs import STORAGE, Crs

FIELD = "filter"
GEOMETRY_PROPERTY = "geometry"
SPATIAL = {
    "S_INTERSECTS": "ST_Intersects",
    "S_DISJOINT": "ST_Disjoint",
    "S_CONTAINS": "ST_Contains",
    "S_WITHIN": "ST_Within",
    "S_TOUCHES": "ST_Touches",
    "S_OVERLAPS": "ST_Overlaps",
    "S_CROSSES": "ST_Crosses",
    "S_EQUALS": "ST_Equals",
}
WKT_TYPES = (
    "POINT",
    "LINESTRING",
    "POLYGON",
    "MULTIPOINT",
    "MULTILINESTRING",
    "MULTIPOLYGON",
    "GEOMETRYCOLLECTION",
)
KEYWORDS = {"AND", "OR", "NOT", "LIKE", "BETWEEN", "IN", "IS", "NULL", "TRUE", "FALSE"}
NUMERIC = ("integer", "number")
TEMPORAL = ("date", "date-time")

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<number>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<quoted>"(?:[^"]|"")+")
      | (?P<ident>[A-Za-z_][A-Za-z0-9_:.\-]*)
      | (?P<op><>|<=|>=|=|<|>|\(|\)|,)
    )""",
    re.VERBOSE,
)


@dataclass
class Token:
    kind: str
    value: str
    start: int
    end: int


@dataclass
class Params:
    """Bind parameters gathered while compiling (names p0, p1, …)."""

    values: dict[str, Any] = field(default_factory=dict)
    prefix: str = "p"

    def add(self, value: Any) -> str:
        name = f"{self.prefix}{len(self.values)}"
        self.values[name] = value
        return f":{name}"


def _bad(code: str, **params: Any) -> ValidationFailed:
    """A refusal of the filter: a ``publish.cql2_*`` code and its parameters."""
    return ValidationFailed(code, field=FIELD, **params)


def tokenize(text: str) -> list[Token]:
    """The tokens of a CQL2 text expression."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            bad = text[pos:].strip()[:20]
            raise _bad("publish.cql2_unreadable", text=bad, position=pos + 1)
        kind = m.lastgroup or ""
        tokens.append(Token(kind, m.group(kind), m.start(kind), m.end()))
        pos = m.end()
    return tokens


@dataclass
class Expr:
    sql: str
    type: str  # string, integer, number, boolean, date, date-time, geometry, null


class Parser:
    """Recursive descent over the CQL2 text grammar, emitting SQL as it goes."""

    def __init__(self, text: str, collection: Collection, params: Params, crs: Crs) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.collection = collection
        self.params = params
        self.crs = crs

    # -- token helpers
    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def word(self, offset: int = 0) -> str | None:
        t = self.peek(offset)
        return t.value.upper() if t is not None and t.kind == "ident" else None

    def take(self) -> Token:
        t = self.peek()
        if t is None:
            raise _bad("publish.cql2_ends_early")
        self.i += 1
        return t

    def expect_op(self, op: str) -> None:
        t = self.take()
        if t.kind != "op" or t.value != op:
            raise _bad("publish.cql2_expected", expected=op, position=t.start + 1, found=t.value)

    def expect_word(self, word: str) -> None:
        t = self.take()
        if t.kind != "ident" or t.value.upper() != word:
            raise _bad("publish.cql2_expected", expected=word, position=t.start + 1, found=t.value)

    def at_op(self, op: str) -> bool:
        t = self.peek()
        return t is not None and t.kind == "op" and t.value == op

    # -- grammar
    def parse(self) -> str:
        if not self.tokens:
            raise _bad("publish.cql2_empty")
        sql = self.boolean_expression()
        t = self.peek()
        if t is not None:
            raise _bad("publish.cql2_unexpected", found=t.value, position=t.start + 1)
        return sql

    def boolean_expression(self) -> str:
        parts = [self.boolean_term()]
        while self.word() == "OR":
            self.take()
            parts.append(self.boolean_term())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def boolean_term(self) -> str:
        parts = [self.boolean_factor()]
        while self.word() == "AND":
            self.take()
            parts.append(self.boolean_factor())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def boolean_factor(self) -> str:
        if self.word() == "NOT":
            self.take()
            return f"(NOT {self.boolean_factor()})"
        return self.boolean_primary()

    def boolean_primary(self) -> str:
        if self.at_op("("):
            # A parenthesised boolean expression, or a parenthesised scalar on the left of a predicate.
            save = self.i
            self.take()
            try:
                inner = self.boolean_expression()
                self.expect_op(")")
                if self.peek() is None or self.word() in ("AND", "OR") or self.at_op(")"):
                    return f"({inner})"
            except ValidationFailed:
                pass
            self.i = save
        w = self.word()
        if w in ("TRUE", "FALSE") and (
            self.peek(1) is None
            or self.word(1) in ("AND", "OR")
            or (self.peek(1) and self.peek(1).value == ")")
        ):
            self.take()
            return w
        if w in SPATIAL:
            return self.spatial()
        if w is not None and w.startswith(("T_", "A_")):
            raise _bad("publish.cql2_temporal", name=w)
        return self.predicate()

    def predicate(self) -> str:
        left = self.scalar()
        negate = False
        w = self.word()
        if w == "NOT" and self.word(1) in ("LIKE", "BETWEEN", "IN"):
            self.take()
            negate = True
            w = self.word()
        if w == "LIKE":
            self.take()
            right = self.scalar()
            self._require(left, ("string",), "LIKE")
            self._require(right, ("string",), "LIKE")
            return f"({left.sql} {'NOT ' if negate else ''}LIKE {right.sql})"
        if w == "BETWEEN":
            self.take()
            low = self.scalar()
            self.expect_word("AND")
            high = self.scalar()
            self._comparable(left, low, "BETWEEN")
            self._comparable(left, high, "BETWEEN")
            return f"({left.sql} {'NOT ' if negate else ''}BETWEEN {low.sql} AND {high.sql})"
        if w == "IN":
            self.take()
            self.expect_op("(")
            items = [self.scalar()]
            while self.at_op(","):
                self.take()
                items.append(self.scalar())
            self.expect_op(")")
            for item in items:
                self._comparable(left, item, "IN")
            return f"({left.sql} {'NOT ' if negate else ''}IN ({', '.join(i.sql for i in items)}))"
        if w == "IS":
            self.take()
            is_not = False
            if self.word() == "NOT":
                self.take()
                is_not = True
            self.expect_word("NULL")
            return f"({left.sql} IS {'NOT ' if is_not else ''}NULL)"
        t = self.peek()
        if t is not None and t.kind == "op" and t.value in ("=", "<>", "<", ">", "<=", ">="):
            self.take()
            right = self.scalar()
            self._comparable(left, right, t.value)
            if left.type == "boolean" and t.value not in ("=", "<>"):
                raise _bad("publish.cql2_boolean_op", op=t.value)
            return f"({left.sql} {t.value} {right.sql})"
        if left.type == "boolean":
            return f"({left.sql})"
        raise _bad("publish.cql2_comparison", found=t.value if t is not None else "-")

    def _require(self, e: Expr, types: tuple[str, ...], what: str) -> None:
        if e.type not in types and e.type != "null":
            raise _bad("publish.cql2_types", what=what, types=list(types), given=e.type)

    def _comparable(self, a: Expr, b: Expr, what: str) -> None:
        if "null" in (a.type, b.type) or a.type == b.type:
            return
        if a.type in NUMERIC and b.type in NUMERIC:
            return
        if a.type in TEMPORAL and b.type in TEMPORAL:
            return
        raise _bad("publish.cql2_compare", left=a.type, right=b.type, what=what)

    def scalar(self) -> Expr:
        t = self.take()
        if t.kind == "string":
            value = t.value[1:-1].replace("''", "'")
            return Expr(self.params.add(value), "string")
        if t.kind == "number":
            num: int | float = (
                int(t.value) if re.fullmatch(r"[+-]?\d+", t.value) else float(t.value)
            )
            return Expr(self.params.add(num), "integer" if isinstance(num, int) else "number")
        if t.kind == "op" and t.value == "(":
            inner = self.scalar()
            self.expect_op(")")
            return inner
        if t.kind == "quoted":
            return self.property(t.value[1:-1].replace('""', '"'), t)
        if t.kind != "ident":
            raise _bad("publish.cql2_property_or_value", position=t.start + 1, found=t.value)
        w = t.value.upper()
        if w in ("TRUE", "FALSE"):
            return Expr(w, "boolean")
        if w == "NULL":
            return Expr("NULL", "null")
        if w in ("DATE", "TIMESTAMP") and self.at_op("("):
            self.take()
            lit = self.take()
            if lit.kind != "string":
                raise _bad("publish.cql2_quoted", name=w)
            self.expect_op(")")
            return self.temporal(w, lit.value[1:-1])
        if w == "CASEI" and self.at_op("("):
            self.take()
            inner = self.scalar()
            self.expect_op(")")
            self._require(inner, ("string",), "CASEI")
            return Expr(f"lower({inner.sql})", "string")
        if self.at_op("("):
            raise _bad("publish.cql2_function", name=t.value)
        if w in KEYWORDS:
            raise _bad("publish.cql2_unexpected", found=t.value, position=t.start + 1)
        return self.property(t.value, t)

    def temporal(self, kind: str, raw: str) -> Expr:
        try:
            if kind == "DATE":
                return Expr(f"CAST({self.params.add(date.fromisoformat(raw))} AS date)", "date")
            value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise _bad("publish.cql2_bad_date" if kind == "DATE" else "publish.cql2_bad_timestamp", kind=kind,
                       given=raw) from None
        if value.tzinfo is None:
            raise _bad("publish.cql2_timestamp_zone", given=raw)
        return Expr(f"CAST({self.params.add(value)} AS timestamptz)", "date-time")

    def property(self, name: str, t: Token) -> Expr:
        if name == GEOMETRY_PROPERTY:
            return Expr("s.geom", "geometry")
        q = self.collection.queryable(name)
        if q is None:
            known = [GEOMETRY_PROPERTY] + [x.name for x in self.collection.queryables]
            raise _bad("publish.cql2_unknown_property", name=name, collection=self.collection.id, known=known)
        return Expr(q.sql, q.type)

    # -- spatial
    def spatial(self) -> str:
        fn = SPATIAL[self.word() or ""]
        self.take()
        self.expect_op("(")
        a = self.geometry()
        self.expect_op(",")
        b = self.geometry()
        self.expect_op(")")
        if a.sql != "s.geom" and b.sql != "s.geom":
            raise _bad("publish.cql2_geometry_side", function=fn.replace("ST_", "S_").upper())
        return f"{fn}({a.sql}, {b.sql})"

    def geometry(self) -> Expr:
        w = self.word()
        t = self.peek()
        if t is None:
            raise _bad("publish.cql2_ends_early")
        if w == "BBOX" or w == "ENVELOPE":
            self.take()
            self.expect_op("(")
            nums = [self._number()]
            while self.at_op(","):
                self.take()
                nums.append(self._number())
            self.expect_op(")")
            if len(nums) == 6:
                nums = [nums[0], nums[1], nums[3], nums[4]]
            if len(nums) != 4:
                raise _bad("publish.cql2_bbox_numbers")
            if self.crs.lat_first:
                nums = [nums[1], nums[0], nums[3], nums[2]]
            if nums[0] > nums[2] or nums[1] > nums[3]:
                raise _bad("publish.cql2_bbox_order")
            ps = [self.params.add(float(n)) for n in nums]
            srid = self.crs.srid
            env = f"ST_MakeEnvelope({', '.join(ps)}, {srid})"
            return Expr(env if srid == 4326 else f"ST_Transform({env}, 4326)", "geometry")
        if w is not None and w in WKT_TYPES:
            return self.wkt()
        e = self.scalar()
        if e.type != "geometry":
            raise _bad("publish.cql2_spatial_operand", given=e.type)
        return e

    def _number(self) -> float:
        t = self.take()
        if t.kind != "number":
            raise _bad("publish.cql2_number", position=t.start + 1, found=t.value)
        return float(t.value)

    def wkt(self) -> Expr:
        start = self.take().start
        depth = 0
        end = None
        while True:
            t = self.peek()
            if t is None:
                break
            if t.kind == "op" and t.value == "(":
                depth += 1
            elif t.kind == "op" and t.value == ")":
                depth -= 1
                if depth == 0:
                    self.take()
                    end = t.end
                    break
                if depth < 0:
                    break
            self.take()
        if end is None:
            raise _bad("publish.cql2_unfinished_geometry", position=start + 1)
        raw = self.text[start:end]
        try:
            geom = shapely.wkt.loads(raw)
        except (ShapelyError, ValueError, TypeError) as exc:
            raise _bad("publish.cql2_bad_wkt", given=raw[:60], reason=str(exc)) from None
        if geom.is_empty:
            raise _bad("publish.cql2_empty_geometry")
        if self.crs.srid == 4326:
            from shapely.ops import transform

            if self.crs.lat_first:
                geom = transform(lambda x, y, z=None: (y, x), geom)
            for x, y in _coords(geom):
                if not (-180 <= x <= 180 and -90 <= y <= 90):
                    raise _bad("publish.cql2_coordinate_range", x=x, y=y)
        p = self.params.add(geom.wkt)
        lit = f"ST_GeomFromText({p}, {self.crs.srid})"
        return Expr(lit if self.crs.srid == 4326 else f"ST_Transform({lit}, 4326)", "geometry")


def _coords(geom: Any) -> list[tuple[float, float]]:
    import shapely

    return [(float(c[0]), float(c[1])) for c in shapely.get_coordinates(geom)]


MAX_NESTING = 16
"""Parentheses and NOTs nest at most this deep (the parser backtracks on parentheses, and a deeper
filter is a hostile one: 300 levels used to exhaust Python's recursion)."""


def _nesting(tokens: list[Token]) -> int:
    deepest = depth = 0
    for t in tokens:
        if t.kind == "op" and t.value == "(":
            depth += 1
        elif t.kind == "op" and t.value == ")":
            depth -= 1
        elif t.kind == "ident" and t.value.upper() == "NOT":
            depth += 1  # NOT nests too (and unwinds with the expression: counted as a bound)
        deepest = max(deepest, depth)
    return deepest


def compile_filter(text: str, *, collection: Collection, params: Params, crs: Crs = STORAGE) -> str:
    """SQL for a CQL2 text filter on the collection's public source ``s``; ValidationFailed if bad."""
    if len(text) > 20_000:
        raise _bad("publish.cql2_too_long", maximum=20_000)
    if "\x00" in text:
        raise _bad("publish.cql2_nul")
    parser = Parser(text, collection, params, crs)
    if _nesting(parser.tokens) > MAX_NESTING:
        raise _bad("publish.cql2_too_deep", maximum=MAX_NESTING)
    return parser.parse()
