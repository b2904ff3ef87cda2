"""What every `commons-map` subcommand shares: the error line, the progress bar, the cooperative a
command names (or the first one), and a unit of work that prints refusals in the terminal's language.

Light on purpose (typer and rich only, the rest imported when used): every command imports it, and
the command line's start-up is part of what users wait for.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from commons_map.errors import DomainError
    from commons_map.people.models import Cooperative, Member

console = Console(stderr=True, soft_wrap=True)


def fail(problem: str | DomainError, code: int = 1) -> typer.Exit:
    """Print an error for a person (a refusal in the terminal's language) and return the exit to raise."""
    if not isinstance(problem, str):
        from commons_map.messages import terminal_locale

        problem = problem.summary(terminal_locale())
    console.print(f"[bold red]error:[/] {problem}")
    return typer.Exit(code)


def progress() -> Progress:
    """The progress bar of long commands (on standard error, with the other messages)."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console,
    )


def cooperative_named(session: Session, slug: str | None) -> Cooperative:
    """The cooperative a command names by ``--cooperative`` (slug or id), or the first one."""
    from commons_map.people.service import default_cooperative, get_cooperative

    return get_cooperative(session, slug) if slug else default_cooperative(session)


def member_named(session: Session, slug: str | None, username: str) -> tuple[Cooperative, Member]:
    """The cooperative a command names and one of its members (``--by``: who acts)."""
    from commons_map.people.service import get_member

    coop = cooperative_named(session, slug)
    return coop, get_member(session, cooperative_id=coop.id, username_or_id=username)


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """A session as the owner, committed at the end; a refusal is printed (exit 1), nothing written."""
    from commons_map.db import make_engine, session_scope
    from commons_map.errors import DomainError
    from commons_map.settings import get_settings

    engine = make_engine(get_settings())
    try:
        with session_scope(engine) as session:
            yield session
    except DomainError as exc:
        raise fail(exc) from exc
    finally:
        engine.dispose()
