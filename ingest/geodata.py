"""Importing commons from geodata files: per-row report, idempotent by external id, all or nothing.

The rules are those of ``commons_map.register.service.create_commons`` (kind known, geometry class
of the kind, inside the territory's margin, parent of the right kind that holds the geometry,
visibility), applied set-based: the rows are COPYed into a temporary staging table, checked and
classified with one SQL pass in PostGIS, then written with one INSERT of the new rows (their ids
drawn while classifying), one UPDATE of the changed ones and history rows in bulk, inside the
caller's transaction.
"""

from __future__ import annotations

import gc
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from commons_map.errors import Conflict, PermissionDenied, ValidationFailed
from commons_map.messages import Message
from commons_map.notify import jobs
from commons_map.people.models import Cooperative, Member
from commons_map.people.permissions import is_coordinator_of
from commons_map.register.models import STATES
from commons_map.settings import get_settings
from ingest.readers import SourceTable, problem, read_problem, read_source
from ingest.safety import LIMITS, Limits

Progress = Callable[[str, int, int], None]

TARGETS = ("external_id", "name", "kind", "description", "visibility", "state", "parent")
# Columns looked for when a target is not mapped (case-insensitive), French names included.
ALIASES: dict[str, tuple[str, ...]] = {
    "external_id": ("external_id", "uuid", "id_externe", "identifiant"),
    "name": ("name", "nom", "libelle"),
    "kind": ("kind", "type_commun"),
    "description": ("description", "descr"),
    "visibility": ("visibility", "visibilite", "visibilité"),
    "state": ("state", "etat", "état"),
    "parent": ("parent", "parent_id_externe"),
}
VISIBILITY_WORDS = {"public": "public", "publique": "public", "members": "members", "membres": "members",
                    "private": "private", "privé": "private", "prive": "private", "privée": "private"}
STATE_WORDS = {s: s for s in STATES} | {"actif": "active", "en friche": "fallow", "friche": "fallow",
                                         "à réparer": "needs_repair", "perdu": "lost", "hors service": "out_of_service"}
ACTIONS = ("create", "update", "unchanged", "rejected")
IMPORT_WORK_MEM = "64MB"  # per sort or hash of the import's statements, for its transaction only


@dataclass
class ImportOptions:
    """How to read a file and what its columns mean."""

    mapping: dict[str, str] = field(default_factory=dict)  # target -> source column
    kind: str | None = None  # one kind for every row, instead of a column
    crs: str | None = None
    layer: str | None = None
    make_valid: bool = False
    dry_run: bool = False
    id_prefix: str = ""
    skip_rejected: bool = False
    csv_columns: dict[str, str] = field(default_factory=dict)  # lat / lon / wkt column names
    encoding: str | None = None  # a shapefile's or CSV's texts (as ogr2ogr's -oo ENCODING=); else detected


@dataclass
class RowReport:
    """What happened (or would happen) to one row of the file."""

    row: int
    external_id: str | None
    action: str
    problems: list[Message]  # why it is rejected: codes with parameters, rendered per language
    repaired: bool = False
    commons_id: int | None = None

    def reasons_in(self, locale: str) -> list[str]:
        """Why the row is rejected, in ``locale``."""
        return [p.text(locale) for p in self.problems]

    @property
    def reasons(self) -> list[str]:
        """Why the row is rejected, in English (logs)."""
        return self.reasons_in("en")


@dataclass
class ImportReport:
    """The per-row outcome of an import, and whether anything was written."""

    file: str
    format: str
    crs: str
    row_label: str
    mapping: dict[str, str]
    rows: list[RowReport]
    dry_run: bool
    written: bool = False

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(r.action for r in self.rows)
        return {a: c.get(a, 0) for a in ACTIONS} | {"repaired": sum(r.repaired for r in self.rows)}

    @property
    def rejected(self) -> list[RowReport]:
        return [r for r in self.rows if r.action == "rejected"]

    def as_dict(self, locale: str = "en") -> dict[str, Any]:
        """A JSON-ready report, its reasons in ``locale`` (and as codes with parameters: ``problems``)."""
        return {
            "file": self.file, "format": self.format, "crs": self.crs, "mapping": self.mapping,
            "dry_run": self.dry_run, "written": self.written, "counts": self.counts,
            "rows": [
                {"row": r.row, "external_id": r.external_id, "action": r.action, "reasons": r.reasons_in(locale),
                 "problems": [_problem_out(p) for p in r.problems],
                 "repaired": r.repaired, "commons_id": r.commons_id}
                for r in self.rows
            ],
        }


def resolve_mapping(columns: list[str], options: ImportOptions) -> dict[str, str]:
    """target -> column, from what was asked plus the usual names; ValidationFailed for unknowns."""
    unknown_targets = set(options.mapping) - set(TARGETS)
    if unknown_targets:
        raise ValidationFailed("ingest.unknown_targets", field="map", fields=sorted(unknown_targets),
                               known=list(TARGETS))
    mapping: dict[str, str] = {}
    for target, col in options.mapping.items():
        if col not in columns:
            same = [c for c in columns if c.lower() == col.lower()]
            col = same[0] if len(same) == 1 else col
        if col not in columns:
            raise ValidationFailed("ingest.map_no_column", field=f"map.{target}", target=target, column=col,
                                   columns=list(columns) or "-")
        mapping[target] = col
    lower = {c.lower(): c for c in columns}
    for target in TARGETS:
        if target in mapping or (target == "kind" and options.kind):
            continue
        for alias in ALIASES[target]:
            if alias in lower:
                mapping[target] = lower[alias]
                break
    if "external_id" not in mapping:
        raise ValidationFailed("ingest.no_external_id", field="external_id", columns=list(columns))
    if "name" not in mapping:
        raise ValidationFailed("ingest.no_name_column", field="name", columns=list(columns))
    if "kind" not in mapping and not options.kind:
        raise ValidationFailed("ingest.kind_needed", field="kind")
    if options.kind and "kind" in options.mapping:
        raise ValidationFailed("ingest.kind_twice", field="kind")
    return mapping


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        if value.is_integer():
            return str(int(value))
    s = str(value).strip()
    return s or None


def _norm(words: dict[str, str], value: str | None) -> tuple[str | None, str | None]:
    """(the code, None) when recognised; (None, the raw value) when not."""
    if value is None:
        return None, None
    code = words.get(value.strip().lower())
    return (code, None) if code else (None, value)


def import_commons(
    session: Session,
    *,
    actor: Member | None,
    path: Path,
    options: ImportOptions,
    cooperative: Cooperative | None = None,
    filename: str | None = None,
    system: bool = False,
    progress: Progress | None = None,
    limits: Limits = LIMITS,
) -> ImportReport:
    """Import commons from a geodata file into the cooperative; see the module docstring.

    ``system`` is for the command line run by whoever runs the server (no actor needed);
    otherwise the actor must be a coordinator of the cooperative.
    """
    if cooperative is None:
        if actor is None:
            raise PermissionDenied("ingest.sign_in")
        cooperative = session.get(Cooperative, actor.cooperative_id)
        assert cooperative is not None
    if not system and not is_coordinator_of(actor, cooperative.id):
        raise PermissionDenied("ingest.coordinators_only")
    say = progress or (lambda stage, done, total: None)
    name = filename or path.name
    # The coordinator who ran a real import (not a dry run) hears how it ended (notify.jobs).
    teller = actor.id if actor is not None and not options.dry_run else None
    run = jobs.run_id()
    try:
        table = read_source(path, crs=options.crs, layer=options.layer, csv_columns=options.csv_columns,
                            encoding=options.encoding, limits=limits)
        mapping = resolve_mapping(table.columns, options)
        say("read", len(table), len(table))
        report = _run(session, cooperative=cooperative, actor=actor, table=table, mapping=mapping,
                      options=options, source=f"import:{name}", say=say)
    except Exception as exc:
        if teller is not None:  # this transaction is lost: the notice is written in one of its own
            jobs.tell_apart(session, member_id=teller, code="notify.import_failed",
                            params={"file": name, "reason": jobs.reason(exc)}, link=None, run=run)
        raise
    report.file = name
    if teller is not None:
        c = report.counts
        if report.written:
            jobs.tell(session, member_id=teller, failed=False, code="notify.import_finished", link="/app/commons",
                      params={"file": name, "created": c["create"], "updated": c["update"],
                              "unchanged": c["unchanged"], "rejected": c["rejected"]}, run=run)
        else:
            jobs.tell(session, member_id=teller, failed=True, code="notify.import_rejected", link=None,
                      params={"file": name, "rejected": c["rejected"]}, run=run)
    return report


def _texts(values: list[Any]) -> list[str | None]:
    """``_text`` over a column, with a fast path for the usual case (a str)."""
    return [(v.strip() or None) if type(v) is str else _text(v) for v in values]


def _nul_problems(cols: dict[str, list[str | None]]) -> dict[int, list[str]]:
    """Rows whose texts hold a NUL character (no PostgreSQL text can): named per row, cut out of the value."""
    found: dict[int, list[str]] = {}
    for target, values in cols.items():
        if not any(v is not None and "\x00" in v for v in values):
            continue
        for i, v in enumerate(values):
            if v is not None and "\x00" in v:
                values[i] = v.replace("\x00", "")
                found.setdefault(i, []).append(problem(target, "ingest.row_nul"))
    return found


def _stage_rows(table: SourceTable, mapping: dict[str, str], options: ImportOptions, kinds: dict[str, str]):
    """The staging rows, built column by column (the same values as a per-row ``_text``/``_norm``)."""
    frame = table.frame
    n = len(table)
    none: list[str | None] = [None] * n
    cols = {t: (_texts(frame[c].tolist()) if c in frame.columns else none) for t, c in mapping.items()}
    nul = _nul_problems(cols)
    prefix = options.id_prefix
    ext, parent = cols.get("external_id", none), cols.get("parent", none)
    if prefix:
        ext = [None if e is None else prefix + e for e in ext]
        parent = [None if e is None else prefix + e for e in parent]
    given_kinds = [options.kind] * n if options.kind else cols.get("kind", none)
    # French or English labels too
    kind = [kinds.get(k.strip().lower(), k) if k else None for k in given_kinds]
    vis = [_norm(VISIBILITY_WORDS, v) for v in cols["visibility"]] if "visibility" in cols else [(None, None)] * n
    state = [_norm(STATE_WORDS, v) for v in cols["state"]] if "state" in cols else [(None, None)] * n
    problems = [table.problems.get(i) or None for i in range(n)] if table.problems else none
    if nul:
        problems = [(p or []) + nul[i] if i in nul else p for i, p in enumerate(problems)]
    return zip(table.row_numbers, ext, cols.get("name", none), kind, cols.get("description", none),
               vis, state, parent, table.wkb, problems, strict=True)


def _run(session: Session, *, cooperative: Cooperative, actor: Member | None, table: SourceTable,
         mapping: dict[str, str], options: ImportOptions, source: str, say: Progress) -> ImportReport:
    """The pipeline, in the caller's transaction: stage the rows, check each on its own, check them
    against each other and the register, write (unless a dry run or rows are rejected), report."""
    total = len(table)
    suffix = uuid.uuid4().hex[:10]
    raw_t, imp_t, cls_t = f"imp_raw_{suffix}", f"imp_{suffix}", f"imp_cls_{suffix}"
    conn = session.connection()
    kinds = _kind_words(conn, cooperative)
    _take_turn(conn, cooperative.id)
    saved = _tune_planner(conn)
    _stage(conn, raw_t=raw_t, table=table, mapping=mapping, options=options, kinds=kinds, say=say)
    say("staged", total, total)
    temp_tables = _check(conn, raw_t=raw_t, imp_t=imp_t, cls_t=cls_t, cooperative=cooperative, mapping=mapping,
                         options=options, say=say, total=total)
    actions = dict(session.execute(text(f"SELECT action, count(*) FROM {cls_t} GROUP BY action")).all())
    write = not options.dry_run and (not actions.get("rejected") or options.skip_rejected)
    if write:
        _write(session, cls_t=cls_t, cooperative=cooperative, actor=actor, mapping=mapping, source=source, say=say,
               total=total, actions=actions)
        say("written", total, total)
    report_rows = _report_rows(conn, cls_t=cls_t, mapping=mapping, label=table.row_label, written=write)
    conn.exec_driver_sql(f"DROP TABLE {', '.join(temp_tables)}")
    _restore_planner(conn, saved)
    return ImportReport(file="", format=table.format, crs=table.crs_note, row_label=table.row_label,
                        mapping=mapping, rows=report_rows, dry_run=options.dry_run, written=write)


def _check(conn: Any, *, raw_t: str, imp_t: str, cls_t: str, cooperative: Cooperative, mapping: dict[str, str],
           options: ImportOptions, say: Progress, total: int) -> list[str]:
    """Every rule, set-based: each staged row on its own (pass 1), then against the others and the
    register (pass 2, into ``cls_t``: each row's action and reasons). Returns the temporary tables made."""
    params = _check_params(conn, cooperative, options)
    temp_tables = [raw_t]
    if "parent" in mapping:
        # Parents are looked for among the file's rows too: pass 1 is kept in a table, indexed, analysed.
        _keep_row_checks(conn, raw_t=raw_t, imp_t=imp_t, params=params)
        temp_tables.append(imp_t)
        rows_source = imp_t
        say("checked rows", total, total)
    else:  # pass 1 is a subquery of pass 2: one statement, one temporary table less
        rows_source = f"({_row_checks_sql(raw_t)})"
    # A real run numbers the rows to create now (their ids, from the table's own sequence, in the
    # file's order), so that they are written with a plain INSERT and their history needs no second
    # look-up. A run that ends up writing nothing leaves a gap in the sequence, as a rolled-back
    # INSERT does. ``cls_t`` is written in the file's order: the writes read it as it is, unsorted.
    _classify(conn, rows_source=rows_source, imp_t=imp_t, cls_t=cls_t, mapping=mapping, params=params,
              assign_ids=not options.dry_run)
    temp_tables.append(cls_t)
    if "parent" not in mapping:
        say("checked rows", total, total)
    say("checked against the register", total, total)
    return temp_tables


def _driver(conn: Any) -> Any:
    """psycopg's own connection under SQLAlchemy's (for COPY and plain-tuple reads)."""
    raw = conn.connection.driver_connection
    assert raw is not None
    return raw


# The kinds a cooperative may use: the shipped ones and its own (another cooperative's are not).
OWN_KINDS = "SELECT code, label_fr, label_en FROM commons_kinds WHERE cooperative_id IS NULL OR cooperative_id = :coop"


def _kind_words(conn: Any, cooperative: Cooperative) -> dict[str, str]:
    """Every kind's code, French and English label (lower case) -> its code, of the kinds the
    cooperative may use."""
    kinds: dict[str, str] = {}
    for code, fr, en in conn.execute(text(OWN_KINDS), {"coop": cooperative.id}):
        kinds.setdefault(fr.lower(), code)
        kinds.setdefault(en.lower(), code)
    for code in list(kinds.values()):
        kinds[code] = code
    return kinds


def _take_turn(conn: Any, cooperative_id: int) -> None:
    """Imports into one cooperative take turns: the comparison with what exists stays true until written."""
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('commons-map:import'), :c)"), {"c": cooperative_id})


def _tune_planner(conn: Any) -> Any:
    """Planner settings for the import's few large one-shot statements; returns the former ones.

    Put back by ``_restore_planner`` (SET LOCAL would otherwise last to the end of the caller's
    transaction). JIT compiles each statement for ~0.3 s because PostGIS functions' declared costs
    make every plan look huge; 4 MB of work_mem makes the sorts and hashes of 100,000 rows spill to
    disk. Durability is not touched.
    """
    return conn.execute(text(
        "SELECT current_setting('jit'), current_setting('work_mem'), set_config('jit', 'off', true),"
        " set_config('work_mem', :wm, true)"), {"wm": IMPORT_WORK_MEM}).one()


def _restore_planner(conn: Any, saved: Any) -> None:
    conn.execute(text("SELECT set_config('jit', :jit, true), set_config('work_mem', :wm, true)"),
                 {"jit": saved[0], "wm": saved[1]})


def _stage(conn: Any, *, raw_t: str, table: SourceTable, mapping: dict[str, str], options: ImportOptions,
           kinds: dict[str, str], say: Progress) -> None:
    """The file's rows, as text and WKB, COPYed (binary) into the temporary table ``raw_t``."""
    total = len(table)
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE {raw_t} (rn int, external_id text, name text, kind text, description text,"
        " visibility text, visibility_bad text, state text, state_bad text, parent text, geom geometry(Geometry, 4326),"
        " problems text[])"
    )
    raw = _driver(conn)
    # Binary COPY: the WKB goes as it is to PostGIS's receive function, which gives it the column's SRID.
    with raw.cursor() as cur, cur.copy(
        f"COPY {raw_t} (rn, external_id, name, kind, description, visibility, visibility_bad, state, state_bad,"
        " parent, geom, problems)"
        " FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["int4", "text", "text", "text", "text", "text", "text", "text", "text", "text", "bytea",
                        "text[]"])
        write = copy.write_row
        for n, (rn, ext, name, kind, descr, vis, state, parent, wkb, problems) in enumerate(
                _stage_rows(table, mapping, options, kinds), 1):
            write((rn, ext, name, kind, descr, *vis, *state, parent, wkb, problems))
            if n % 5000 == 0:
                say("staged", n, total)


def _check_params(conn: Any, cooperative: Cooperative, options: ImportOptions) -> dict[str, Any]:
    """The values the checks' SQL is run with."""
    known = ", ".join(sorted(row[0] for row in conn.execute(text(OWN_KINDS), {"coop": cooperative.id})))
    margin = get_settings().territory_margin_m
    return {"coop": cooperative.id, "make_valid": options.make_valid, "known": known, "margin": margin,
            "margin_km": f"{margin / 1000:g}", "coop_name": cooperative.name}


def _row_checks_sql(raw_t: str) -> str:
    """Pass 1: each row on its own (kind, texts, validity and repair, geometry class, territory)."""
    return f"""
        WITH t AS (SELECT territory FROM cooperatives WHERE id = :coop)
        SELECT r.rn, r.external_id, first_value(r.rn) OVER w AS first_rn, btrim(r.name) AS name, r.description,
               r.parent AS parent_ext,
               k.code AS kind_code, k.requires_parent, k.parent_kinds,
               coalesce(r.visibility, k.default_visibility) AS visibility, r.state,
               f.geom, (g.g0 IS NOT NULL AND NOT d.valid AND f.geom IS NOT NULL AND NOT ST_IsEmpty(f.geom)
                        AND CAST(:make_valid AS boolean)) AS repaired,
               coalesce(r.problems, '{{}}') || array_remove(ARRAY[
                 CASE WHEN r.external_id IS NULL THEN {_p('external_id', 'ingest.row_missing')} END,
                 CASE WHEN first_value(r.rn) OVER w <> r.rn
                      THEN {_p('external_id', 'ingest.row_repeats', value='r.external_id',
                               row='first_value(r.rn) OVER w')} END,
                 CASE WHEN nullif(btrim(r.name), '') IS NULL THEN {_p('name', 'ingest.row_missing')}
                      WHEN length(btrim(r.name)) > 200 THEN {_p('name', 'ingest.row_too_long', maximum='200')} END,
                 CASE WHEN r.kind IS NULL THEN {_p('kind', 'ingest.row_missing')}
                      WHEN k.code IS NULL
                      THEN {_p('kind', 'ingest.row_unknown_kind', value='r.kind', known='CAST(:known AS text)')} END,
                 CASE WHEN r.visibility_bad IS NOT NULL
                      THEN {_p('visibility', 'ingest.row_not_one_of', value='r.visibility_bad',
                               allowed="'public, members, private'")} END,
                 CASE WHEN r.state_bad IS NOT NULL
                      THEN {_p('state', 'ingest.row_not_one_of', value='r.state_bad',
                               allowed="'" + ", ".join(STATES) + "'")} END,
                 CASE WHEN g.g0 IS NOT NULL AND NOT d.valid AND NOT CAST(:make_valid AS boolean)
                      THEN {_p('geometry', 'ingest.row_invalid', reason='d.reason')}
                      WHEN g.g0 IS NOT NULL AND NOT d.valid AND (f.geom IS NULL OR ST_IsEmpty(f.geom))
                      THEN {_p('geometry', 'ingest.row_unrepairable', reason='d.reason')} END,
                 CASE WHEN k.geometry = 'area' AND f.geom IS NOT NULL AND NOT ST_IsEmpty(f.geom)
                           AND GeometryType(f.geom) NOT IN ('POLYGON', 'MULTIPOLYGON')
                      THEN {_p('geometry', 'ingest.row_needs_area', kind='k.code',
                               type="replace(ST_GeometryType(f.geom), 'ST_', '')")}
                      WHEN k.geometry = 'point' AND f.geom IS NOT NULL AND NOT ST_IsEmpty(f.geom)
                           AND GeometryType(f.geom) <> 'POINT'
                      THEN {_p('geometry', 'ingest.row_needs_point', kind='k.code',
                               type="replace(ST_GeometryType(f.geom), 'ST_', '')")} END,
                 CASE WHEN f.geom IS NOT NULL AND NOT ST_IsEmpty(f.geom) AND (d.valid OR CAST(:make_valid AS boolean))
                           AND NOT (
                        CASE WHEN ST_Intersects(t.territory, f.geom) THEN true
                             ELSE ST_DWithin(t.territory::geography, f.geom::geography, CAST(:margin AS float8)) END)
                      THEN CASE WHEN ST_DWithin(t.territory::geography, ST_FlipCoordinates(f.geom)::geography,
                                                CAST(:margin AS float8))
                                THEN {_p('geometry', 'ingest.row_outside_swapped', km='CAST(:margin_km AS text)',
                                         cooperative='CAST(:coop_name AS text)')}
                                ELSE {_p('geometry', 'ingest.row_outside', km='CAST(:margin_km AS text)',
                                         cooperative='CAST(:coop_name AS text)')} END END
               ], NULL) AS reasons
        FROM {raw_t} r
        CROSS JOIN t
        LEFT JOIN commons_kinds k ON k.code = r.kind AND (k.cooperative_id IS NULL OR k.cooperative_id = :coop)
        CROSS JOIN LATERAL (SELECT r.geom AS g0) g
        -- ST_IsValidDetail (for the reason) only on the few rows ST_IsValid finds invalid.
        CROSS JOIN LATERAL (SELECT g.g0 IS NULL OR ST_IsValid(g.g0) AS ok) q
        LEFT JOIN LATERAL (SELECT * FROM ST_IsValidDetail(g.g0) WHERE NOT q.ok OFFSET 0) AS v ON true
        CROSS JOIN LATERAL (SELECT coalesce(v.valid, true) AS valid, v.reason) d
        CROSS JOIN LATERAL (SELECT CASE WHEN d.valid THEN g.g0
                                        WHEN CAST(:make_valid AS boolean) THEN CASE k.geometry
                                            WHEN 'area' THEN ST_CollectionExtract(ST_MakeValid(g.g0), 3)
                                            WHEN 'point' THEN ST_CollectionExtract(ST_MakeValid(g.g0), 1)
                                            ELSE ST_MakeValid(g.g0) END
                                   END AS geom) f
        WINDOW w AS (PARTITION BY r.external_id ORDER BY r.rn)
    """


def _keep_row_checks(conn: Any, *, raw_t: str, imp_t: str, params: dict[str, Any]) -> None:
    """Pass 1 kept in the temporary table ``imp_t``, indexed by external id and analysed."""
    conn.execute(text(f"CREATE TEMP TABLE {imp_t} AS {_row_checks_sql(raw_t)}"), params)
    conn.exec_driver_sql(f"CREATE INDEX ON {imp_t} (external_id)")
    conn.exec_driver_sql(f"ANALYZE {imp_t}")


def _classify(conn: Any, *, rows_source: str, imp_t: str, cls_t: str, mapping: dict[str, str],
              params: dict[str, Any], assign_ids: bool) -> None:
    """Pass 2, into ``cls_t``: rows against each other and against the register (parents, archived,
    unchanged), each row's action (create, update, unchanged, rejected) and every reason."""
    compare = ["c.name IS DISTINCT FROM i.name", "c.kind_code IS DISTINCT FROM i.kind_code",
               "gd.moved"]
    changes = [
        "CASE WHEN c.name IS DISTINCT FROM i.name"
        " THEN jsonb_build_object('name', jsonb_build_array(c.name, i.name)) ELSE '{}' END",
        "CASE WHEN c.kind_code IS DISTINCT FROM i.kind_code"
        " THEN jsonb_build_object('kind', jsonb_build_array(c.kind_code, i.kind_code)) ELSE '{}' END",
        "CASE WHEN gd.moved THEN jsonb_build_object('geometry',"
        " jsonb_build_array(ST_AsGeoJSON(c.geom)::jsonb, ST_AsGeoJSON(i.geom)::jsonb)) ELSE '{}' END",
    ]
    for col, given in (("description", "description" in mapping), ("state", "state" in mapping),
                       ("visibility", "visibility" in mapping)):
        if given:
            compare.append(f"c.{col} IS DISTINCT FROM coalesce(i.{col}, c.{col})")
            changes.append(f"CASE WHEN c.{col} IS DISTINCT FROM coalesce(i.{col}, c.{col}) THEN jsonb_build_object("
                           f"'{col}', jsonb_build_array(c.{col}, i.{col})) ELSE '{{}}' END")
    if "parent" in mapping:
        compare.append("(i.parent_ext IS NOT NULL AND c.parent_id IS DISTINCT FROM pe.id)")
        changes.append("CASE WHEN i.parent_ext IS NOT NULL AND c.parent_id IS DISTINCT FROM pe.id"
                       " THEN jsonb_build_object("
                       "'parent_id', jsonb_build_array(c.parent_id, pe.id)) ELSE '{}' END")
    # Checks of the parent, and the joins they need: only when the file has a parent column (without
    # one, every parent_ext is NULL and these joins would only build hash tables of the whole file).
    parent_checks = parent_joins = ""
    if "parent" in mapping:
        parent_checks = f""",
                   CASE WHEN i.parent_ext IS NOT NULL AND pf.rn IS NULL AND pd.id IS NULL
                        THEN {_p('parent', 'ingest.row_parent_unknown', value='i.parent_ext')}
                        WHEN pf.rn IS NOT NULL AND cardinality(pf.reasons) > 0
                        THEN {_p('parent', 'ingest.row_parent_rejected', row='pf.rn')} END,
                   CASE WHEN i.parent_ext IS NOT NULL AND cardinality(i.parent_kinds) > 0
                             AND coalesce(pf.kind_code, pd.kind_code) IS NOT NULL
                             AND NOT coalesce(pf.kind_code, pd.kind_code) = ANY(i.parent_kinds)
                        THEN {_p('parent', 'ingest.row_parent_kind', kind='i.kind_code', kinds='i.parent_kinds',
                                 value='i.parent_ext', parent_kind='coalesce(pf.kind_code, pd.kind_code)')} END,
                   CASE WHEN i.parent_ext IS NOT NULL AND GeometryType(i.geom) IN ('POLYGON', 'MULTIPOLYGON')
                             AND coalesce(pf.geom, pd.geom) IS NOT NULL AND ST_Area(i.geom) > 0
                             AND ST_Area(ST_Intersection(i.geom, coalesce(pf.geom, pd.geom))) / ST_Area(i.geom) < 0.9
                        THEN {_p('geometry', 'ingest.row_parent_outside', parent='coalesce(pf.name, pd.name)',
                                 percent='round(100 * ST_Area(ST_Intersection(i.geom, coalesce(pf.geom, pd.geom)))'
                                         ' / ST_Area(i.geom))')} END"""
        parent_joins = f"""
          LEFT JOIN {imp_t} pf ON pf.external_id = i.parent_ext AND pf.rn = pf.first_rn
          LEFT JOIN commons pd ON pf.rn IS NULL AND pd.cooperative_id = :coop AND pd.external_id = i.parent_ext
                              AND pd.archived_at IS NULL
          LEFT JOIN commons pe ON pe.cooperative_id = :coop AND pe.external_id = i.parent_ext"""
    new_id = ("CASE WHEN x.existing_id IS NULL AND cardinality(x.all_reasons) = 0"
              " THEN nextval('commons_id_seq'::regclass) END") if assign_ids else "NULL"
    conn.execute(text(f"""
        CREATE TEMP TABLE {cls_t} AS
        SELECT x.*, CASE WHEN cardinality(x.all_reasons) > 0 THEN 'rejected'
                         WHEN x.existing_id IS NULL THEN 'create'
                         WHEN x.differs THEN 'update' ELSE 'unchanged' END AS action,
               coalesce(x.existing_id, {new_id})::int AS commons_id
        FROM (
          SELECT i.*, c.id AS existing_id, c.id IS NOT NULL AND ({' OR '.join(compare)}) AS differs,
                 CASE WHEN c.id IS NOT NULL THEN ({' || '.join(changes)}) END AS changes,
                 i.reasons || array_remove(ARRAY[
                   CASE WHEN c.archived_at IS NOT NULL
                        THEN {_p('external_id', 'ingest.row_archived', commons='c.id')} END,
                   CASE WHEN i.parent_ext IS NULL AND i.requires_parent
                        THEN {_p('parent', 'ingest.row_parent_required', kind='i.kind_code',
                                 kinds='i.parent_kinds')} END{parent_checks}
                 ], NULL) AS all_reasons
          FROM {rows_source} i
          LEFT JOIN commons c ON c.cooperative_id = :coop AND c.external_id = i.external_id
          -- Whether the geometry changed, computed once per existing commons (none on a first import).
          LEFT JOIN LATERAL (SELECT ST_AsBinary(c.geom) IS DISTINCT FROM ST_AsBinary(i.geom) AS moved
                             WHERE c.id IS NOT NULL OFFSET 0) gd ON true{parent_joins}
        ) x ORDER BY x.rn
    """), params)


def _report_rows(conn: Any, *, cls_t: str, mapping: dict[str, str], label: str, written: bool) -> list[RowReport]:
    """Each row's outcome, in the file's order (the id of a row to create only once it is written)."""
    columns = dict(mapping)
    with _collector_paused(), _driver(conn).cursor() as cur:  # plain tuples: no SQLAlchemy Row objects
        cur.execute(
            f"SELECT rn, external_id, action, CASE WHEN cardinality(all_reasons) > 0 THEN all_reasons END,"
            f" coalesce(repaired, false) AND action <> 'rejected',"
            f" {'commons_id' if written else 'CASE WHEN action <> ' + repr('create') + ' THEN commons_id END'}"
            f" FROM {cls_t} ORDER BY rn")
        return [
            RowReport(rn, ext, action, [_row_problem(m, columns, label, rn) for m in reasons] if reasons else [],
                      repaired, commons_id)
            for rn, ext, action, reasons, repaired, commons_id in cur.fetchall()
        ]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while the report's rows are made.

    It runs after every 700 new container objects, and now and then over the older generations
    too: for 100,000 rows (a tuple, a RowReport and a list each, none in a reference cycle) that was
    most of the time spent (0.25 s of 0.3 s). Reference counting still frees memory meanwhile; the
    collector is resumed after.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _p(field_name: str, code: str, **params: str) -> str:
    """SQL writing a row's problem as ``readers.problem`` does; ``params`` are SQL expressions."""
    values = ", ".join(f"'{k}', {v}" for k, v in params.items())
    return f"concat_ws(chr(31), '{field_name}', '{code}', jsonb_build_object({values})::text)"


def _problem_out(p: Message) -> dict[str, Any]:
    """A row's problem for JSON: its field (the target or the file's column) and its reason's code and parameters."""
    where = p.params["field"]
    return {"field": where if isinstance(where, str) else where.params["field"]} | p.params["reason"].as_dict()


def _row_problem(stored: str, columns: dict[str, str], label: str, rn: int) -> Message:
    """A stored problem as 'line 12, kind (column 'TYPE'): unknown…', to render in any language."""
    target, reason = read_problem(stored)
    where: Any = target
    if target in columns and columns[target] != target:
        where = Message("ingest.row_field_column", {"field": target, "column": columns[target]})
    return Message("ingest.row_problem", {"label": Message(f"ingest.row_label_{label}"), "row": rn, "field": where,
                                          "reason": reason})


# What a 'created' history row holds (as create_commons records: every given field as [null, value],
# the geometry as GeoJSON), written as JSON text and parsed once: the same jsonb as nested
# jsonb_build_object calls with ST_AsGeoJSON(...)::jsonb (and jsonb_strip_nulls), at a third of the cost.
CREATED_CHANGES = """CAST(concat(
    '{"kind":[null,', coalesce(to_json(x.kind_code)::text, 'null'),
    '],"name":[null,', coalesce(to_json(x.name)::text, 'null'), ']',
    CASE WHEN x.description IS NOT NULL THEN concat(',"description":[null,', to_json(x.description), ']') END,
    ',"geometry":[null,', coalesce(ST_AsGeoJSON(x.geom, 9), 'null'),
    '],"state":[null,', to_json(coalesce(x.state, 'active')),
    '],"visibility":[null,', coalesce(to_json(x.visibility)::text, 'null'),
    '],"external_id":[null,', coalesce(to_json(x.external_id)::text, 'null'), ']',
    CASE WHEN x.parent_ext IS NOT NULL THEN concat(',"parent":[null,', to_json(x.parent_ext), ']') END,
    ',"source":[null,', to_json(CAST(:source AS text)), ']}') AS jsonb)"""


def _write(session: Session, *, cls_t: str, cooperative: Cooperative, actor: Member | None,
           mapping: dict[str, str], source: str, say: Progress, total: int, actions: dict[str, int]) -> None:
    """The rows to create (their ids given by ``_classify``), the rows to update, then their history
    (a statement with no row to write is not run)."""
    conn = session.connection()
    if actions.get("create"):
        _insert_created(session, cls_t=cls_t, cooperative=cooperative)
    if actions.get("update"):
        _update_changed(conn, cls_t=cls_t, mapping=mapping)
    say("written to the register", total, total)
    if "parent" in mapping:
        conn.execute(text(f"""
            UPDATE commons c SET parent_id = p.id
            FROM {cls_t} x JOIN commons p ON p.cooperative_id = :coop AND p.external_id = x.parent_ext
            WHERE c.id = x.commons_id AND x.action IN ('create', 'update') AND c.parent_id IS DISTINCT FROM p.id
        """), {"coop": cooperative.id})
    conn.execute(text(f"""
        INSERT INTO commons_history (commons_id, member_id, action, changes)
        SELECT x.commons_id, :actor,
               CASE x.action WHEN 'create' THEN 'created' ELSE 'updated' END,
               CASE x.action WHEN 'create' THEN {CREATED_CHANGES}
                    ELSE x.changes || jsonb_build_object('source', jsonb_build_array(NULL, CAST(:source AS text))) END
        FROM {cls_t} x WHERE x.action IN ('create', 'update')
    """), {"actor": actor.id if actor else None, "source": source})
    session.expire_all()


def _insert_created(session: Session, *, cls_t: str, cooperative: Cooperative) -> None:
    """The new commons, in one plain INSERT (no ON CONFLICT: its speculative insertion and the
    RETURNING that gave the ids back cost a fifth of the write).

    Imports into a cooperative take turns (``_take_turn``), but another writer (the register's
    form) may have given one of these external ids to a commons since the rows were compared with
    the register: the unique constraint then stops the INSERT, and the import fails as a whole,
    naming the external id, rather than overwriting that commons."""
    conn = session.connection()
    conn.exec_driver_sql("SAVEPOINT import_insert")  # to name the external id if the INSERT fails
    try:
        conn.execute(text(f"""
            INSERT INTO commons (id, cooperative_id, kind_code, name, description, geom, state, visibility,
                                 external_id)
            SELECT commons_id, :coop, kind_code, name, coalesce(description, ''), geom,
                   coalesce(state, 'active'), visibility, external_id
            FROM {cls_t} WHERE action = 'create'
        """), {"coop": cooperative.id})
    except IntegrityError as exc:
        diag = getattr(exc.orig, "diag", None)
        if getattr(diag, "constraint_name", None) != "uq_commons_external_id":
            raise
        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT import_insert")
        taken = conn.scalar(text(f"""
            SELECT x.external_id FROM {cls_t} x JOIN commons c ON c.cooperative_id = :coop
                                                              AND c.external_id = x.external_id
            WHERE x.action = 'create' ORDER BY x.rn LIMIT 1"""), {"coop": cooperative.id})
        raise Conflict("ingest.external_id_taken_meanwhile", field="external_id", external_id=taken) from exc
    conn.exec_driver_sql("RELEASE SAVEPOINT import_insert")


def _update_changed(conn: Any, *, cls_t: str, mapping: dict[str, str]) -> None:
    """The commons the file changes: its name, kind and geometry, and what the file gives of the
    rest (an empty cell keeps the value, as the comparison and the history say)."""
    sets = ["kind_code = x.kind_code", "name = x.name", "geom = x.geom", "updated_at = now()"]
    for col in ("description", "state", "visibility"):
        if col in mapping:
            sets.append(f"{col} = coalesce(x.{col}, c.{col})")
    conn.execute(text(f"""
        UPDATE commons c SET {', '.join(sets)}
        FROM {cls_t} x WHERE x.action = 'update' AND c.id = x.commons_id
    """))
