"""The `commons-map` command: database, demo data, members, serving."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from commons_map.clikit import console, cooperative_named, fail, member_named, progress, unit_of_work
from commons_map.db import ensure_database, make_engine, session_scope
from commons_map.errors import DomainError
from commons_map.settings import get_settings

app = typer.Typer(help="commons-map: the register and map of a cooperative's commons.", no_args_is_help=True)
db_app = typer.Typer(help="The database: create, migrate.", no_args_is_help=True)
demo_app = typer.Typer(help="Demo and synthetic data.", no_args_is_help=True)
members_app = typer.Typer(help="Members of a cooperative.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(members_app, name="members")
kinds_app = typer.Typer(help="Kinds of commons: list them, add one for a cooperative.", no_args_is_help=True)
app.add_typer(kinds_app, name="kinds")

# The command groups kept in modules of their own: (module, attribute). Importing all of them costs
# about a second (the services, models and libraries behind each), so the command line run as
# `commons-map GROUP ...` imports only that group's (see ``_groups_to_load``).
GROUPS: dict[str, tuple[str, str]] = {
    "ledger": ("commons_map.ledger.cli", "ledger_app"),
    "soil": ("commons_map.soil.cli", "app"),
    "maps": ("maps.cli", "app"),
    "reservations": ("commons_map.reservations.cli", "app"),
    "governance": ("commons_map.governance.cli", "app"),
    "exchange": ("commons_map.exchange.cli", "app"),
    "cooperatives": ("commons_map.people.cli", "app"),  # many cooperatives
    "partners": ("commons_map.partners.cli", "app"),  # partner maps
    "notify": ("commons_map.notify.cli", "app"),  # notifications
    "ingest": ("ingest.cli", "app"),  # importers (ingest/)
}


def _groups_to_load(argv: list[str]) -> list[str]:
    """Every group, unless this process is the ``commons-map`` command itself run for one group.

    ``commons-map ingest commons FILE`` needs only ``ingest``; help, completion, the commands of
    this module and any other importer of ``app`` (tests, ``CliRunner``) get them all.
    """
    program = Path(argv[0]).name if argv else ""
    if program not in ("commons-map", "cli.py") or len(argv) < 2:
        return list(GROUPS)
    return [argv[1]] if argv[1] in GROUPS else list(GROUPS)


def _add_groups(names: list[str]) -> None:
    from importlib import import_module

    for name in names:
        module, attribute = GROUPS[name]
        app.add_typer(getattr(import_module(module), attribute), name=name)



@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the database if missing, then apply every migration."""
    from commons_map.migrate import upgrade

    url = get_settings().sync_url
    if ensure_database(url):
        console.print(f"created database {make_url(url).database}")
    upgrade(url)
    from commons_map.tenancy import sync_app_password

    if sync_app_password(get_settings()):
        console.print(f"the app role {get_settings().app_role} has the password of COMMONS_DATABASE_APP_URL")
    console.print("database is up to date")


@db_app.command("backup")
def db_backup(
    out: Annotated[str, typer.Argument(help="the backup file to write (.tar)")],
    as_user: Annotated[str | None, typer.Option("--as", help="the coordinator who runs it: told in their "
                                                "notifications when it finished or failed")] = None,
) -> None:
    """Back up the database (pg_dump custom format) and the attachments into one file."""
    from pathlib import Path

    from commons_map.backup import backup

    settings = get_settings()
    tell = None
    if as_user:
        try:
            tell = _coordinator_id(as_user)
        except DomainError as exc:
            raise fail(exc) from exc
    try:
        with console.status("backing up…"):
            report = backup(settings.sync_url, settings.attachments_dir, Path(out), tell=tell)
    except (RuntimeError, OSError) as exc:
        raise fail(str(exc)) from exc
    console.print(f"wrote {report.path}: {report.tables} tables, {report.rows} rows, "
                  f"{report.attachments} attachments")


def _coordinator_id(username: str) -> int:
    """The id of the coordinator named ``username`` (told how a job ended), or the refusal."""
    from sqlalchemy import select

    from commons_map.errors import NotFound, PermissionDenied
    from commons_map.people.models import Member

    engine = make_engine(get_settings())
    try:
        with session_scope(engine) as session:
            member = session.scalar(select(Member).where(Member.username == username.strip().lower()))
            if member is None:
                raise NotFound("people.no_member", field="as", member=username)
            if not member.is_coordinator:
                raise PermissionDenied("backup.coordinators_only", field="as", member=username)
            return member.id
    finally:
        engine.dispose()


@db_app.command("restore")
def db_restore(
    file: Annotated[str, typer.Argument(help="a backup written by `db backup`")],
    to: Annotated[str | None, typer.Option(help="database URL to restore into (default: the configured one)")] = None,
    force: Annotated[bool, typer.Option(help="replace the content of a database that is not empty")] = False,
) -> None:
    """Restore a backup into a new (or, with --force, an existing) database and verify it."""
    from pathlib import Path

    from commons_map.backup import restore

    settings = get_settings()
    try:
        with console.status("restoring…"):
            report = restore(Path(file), to or settings.sync_url, settings.attachments_dir, force=force)
    except DomainError as exc:
        raise fail(exc) from exc
    except RuntimeError as exc:
        raise fail(str(exc)) from exc
    console.print(f"restored and verified {report.tables} tables, {report.rows} rows, "
                  f"{report.attachments} attachments")


@db_app.command("url")
def db_url() -> None:
    """Print the database URL in use (password hidden)."""
    typer.echo(make_url(get_settings().sync_url).render_as_string(hide_password=True))


@demo_app.command("load")
def demo_load() -> None:
    """Load the demo cooperative (once; a second run changes nothing)."""
    from commons_map.demo.load import DEMO_PASSWORD, load_demo

    engine = make_engine(get_settings())
    with console.status("loading the demo cooperative…") as status, session_scope(engine) as session:
        result = load_demo(session, progress=lambda msg: status.update(f"loading the demo cooperative: {msg}"))
        name = result.cooperative.name
        created = result.created
        n_members, n_commons = len(result.members), len(result.commons)
    engine.dispose()
    if created:
        console.print(f"loaded {name}: {n_members} members, {n_commons} commons")
        console.print(f"demo accounts (demo only): camille, yasmine, mamadou… password {DEMO_PASSWORD!r}")
    else:
        console.print(f"{name} is already loaded ({n_members} members, {n_commons} commons)")


@demo_app.command("synth")
def demo_synth(
    parcels: Annotated[int, typer.Option(min=1, max=5_000_000, help="how many parcels to add")] = 100_000,
    cooperative: Annotated[str | None, typer.Option(help="slug; the first cooperative by default")] = None,
) -> None:
    """Add synthetic land parcels for benchmarks (COPY, no history rows)."""
    from commons_map.demo.synth import load_synthetic

    with unit_of_work() as session:
        coop = cooperative_named(session, cooperative)
    engine = make_engine(get_settings())
    try:
        with progress() as bar:
            task = bar.add_task("synthetic parcels", total=parcels)
            load_synthetic(engine, coop, parcels, advance=lambda n: bar.advance(task, n))
    except DomainError as exc:
        raise fail(exc) from exc
    finally:
        engine.dispose()
    console.print(f"added {parcels} parcels to {coop.slug}")


@members_app.command("add")
def members_add(
    username: str,
    display_name: Annotated[str | None, typer.Option("--name", help="shown to other members")] = None,
    role: Annotated[list[str] | None, typer.Option(help="a role, e.g. coordinator (repeatable)")] = None,
    cooperative: Annotated[str | None, typer.Option(help="slug; the first cooperative by default")] = None,
    locale: Annotated[str, typer.Option(help="fr or en")] = "fr",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
) -> None:
    """Add a member non-interactively; the password comes from stdin."""
    from commons_map.people.service import create_member

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    with unit_of_work() as session:
        coop = cooperative_named(session, cooperative)
        member = create_member(
            session, cooperative=coop, username=username, display_name=display_name or username,
            password=password, roles=set(role or []), locale=locale, bootstrap=True,
        )
        typer.echo(f"added {member.username} (id {member.id}) to {coop.slug}"
                   + (f" as {', '.join(sorted(member.roles))}" if member.roles else ""))


@members_app.command("retire")
def members_retire(
    username: str,
    by: Annotated[str, typer.Option("--by", help="the coordinator who retires them (username)")],
    cooperative: Annotated[str | None, typer.Option(help="slug; the first cooperative by default")] = None,
) -> None:
    """Retire a member: they can no longer sign in; what they did stays. A coordinator does it."""
    from commons_map.people.service import get_member, retire_member

    with unit_of_work() as session:
        coop, actor = member_named(session, cooperative, by)
        member = get_member(session, cooperative_id=coop.id, username_or_id=username)
        retire_member(session, actor=actor, member=member)
        typer.echo(f"retired {member.username} from {coop.slug}")


def _role_change_line(out: dict) -> str:
    return (f"#{out['id']} {out['action']} {out['role']} {out['member']}: {out['state']}"
            f" (asked by {out['requested_by']}" + (f", decided by {out['decided_by']})" if out["decided_by"] else ")"))


@members_app.command("role")
def members_role(
    username: str,
    action: Annotated[str, typer.Argument(help="grant or revoke")],
    by: Annotated[str, typer.Option("--by", help="the coordinator who asks (username)")],
    role: Annotated[str, typer.Option(help="the role")] = "coordinator",
    cooperative: Annotated[str | None, typer.Option(help="slug; the first cooperative by default")] = None,
) -> None:
    """Ask to grant or take back a role: another coordinator approves it (`members decide ID approve`)."""
    from commons_map.people import service as people

    with unit_of_work() as session:
        coop, actor = member_named(session, cooperative, by)
        member = people.get_member(session, cooperative_id=coop.id, username_or_id=username)
        change = people.request_role_change(session, actor=actor, member=member, role=role, action=action)
        typer.echo(_role_change_line(people.role_change_out(session, change)))


@members_app.command("role-changes")
def members_role_changes(
    by: Annotated[str, typer.Option("--by", help="a coordinator (username)")],
    all_: Annotated[bool, typer.Option("--all", help="decided ones too")] = False,
    cooperative: Annotated[str | None, typer.Option(help="slug; the first cooperative by default")] = None,
) -> None:
    """The role changes waiting for a coordinator's approval (or all of them)."""
    from commons_map.people import service as people

    with unit_of_work() as session:
        coop, actor = member_named(session, cooperative, by)
        for change in people.list_role_changes(session, actor=actor, pending_only=not all_):
            typer.echo(_role_change_line(people.role_change_out(session, change)))


@members_app.command("decide")
def members_decide(
    change_id: int,
    decision: Annotated[str, typer.Argument(help="approve or decline")],
    by: Annotated[str, typer.Option("--by", help="the coordinator who decides (username)")],
    note: Annotated[str, typer.Option(help="a note")] = "",
    cooperative: Annotated[str | None, typer.Option(help="slug; the first cooperative by default")] = None,
) -> None:
    """Approve a role change another coordinator asked for, or decline it (who asked withdraws it)."""
    from commons_map.people import service as people

    with unit_of_work() as session:
        coop, actor = member_named(session, cooperative, by)
        if decision == "approve":
            change = people.approve_role_change(session, actor=actor, change_id=change_id, note=note)
        elif decision == "decline":
            change = people.decline_role_change(session, actor=actor, change_id=change_id, note=note)
        else:
            from commons_map.errors import ValidationFailed

            raise ValidationFailed("form.unknown_action", field="decision", action=decision,
                                   known=["approve", "decline"])
        typer.echo(_role_change_line(people.role_change_out(session, change)))


@kinds_app.command("add")
def kinds_add(
    code: str,
    label_fr: Annotated[str, typer.Option("--fr", help="the French label")],
    label_en: Annotated[str, typer.Option("--en", help="the English label")],
    category: Annotated[str, typer.Option(help="land, garden, bed, tool, housing or place")],
    geometry: Annotated[str, typer.Option(help="area, point or any")],
    by: Annotated[str, typer.Option("--by", help="the coordinator who adds it (username)")],
    parent_kind: Annotated[list[str] | None, typer.Option(help="a kind it may sit inside (repeatable)")] = None,
    cooperative: Annotated[str | None, typer.Option(help="slug; the first cooperative by default")] = None,
) -> None:
    """Add a kind of commons for a cooperative (a coordinator), with its French and English labels."""
    from pydantic import ValidationError

    from commons_map.register.schemas import KindIn
    from commons_map.register.service import add_kind

    with unit_of_work() as session:
        coop, actor = member_named(session, cooperative, by)
        try:
            data = KindIn(code=code, label_fr=label_fr, label_en=label_en, category=category,
                          geometry=geometry, parent_kinds=parent_kind or [])
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
            typer.echo(problems, err=True)
            raise typer.Exit(1) from exc
        kind = add_kind(session, actor=actor, data=data)
        typer.echo(f"added kind {kind.code} ({kind.label_fr} / {kind.label_en}) to {coop.slug}")


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(envvar="HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
) -> None:
    """Serve the app (Ctrl-C stops it cleanly)."""
    import uvicorn

    console.print(f"serving on http://{host}:{port}")
    # X-Forwarded-For is believed only from the proxies named in COMMONS_TRUSTED_PROXIES: otherwise
    # anyone (on the loopback too) could pick the address the sign-in throttle counts.
    trusted = get_settings().trusted_proxies
    # With several workers, uvicorn's supervisor kills a worker that does not answer its ping within
    # the health-check timeout (5 s by default): on a busy 2-core machine a worker in the middle of
    # a long request (the first map of 100,000 parcels) can miss it, and its requests are cut.
    uvicorn.run("api.main:app_factory", factory=True, host=host, port=port, workers=workers,
                proxy_headers=bool(trusted), forwarded_allow_ips=trusted or None, log_level="info",
                timeout_worker_healthcheck=60)


_add_groups(_groups_to_load(sys.argv))

if __name__ == "__main__":  # pragma: no cover
    app()
