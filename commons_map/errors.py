"""Domain errors. They know nothing of HTTP: api/errors.py maps each to a status code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FieldProblem:
    """One thing wrong with one field of the input."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class DomainError(Exception):
    """Base of every rule the domain refuses to break."""

    code = "domain_error"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        problems: list[FieldProblem] | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems or [])
        if field is not None and not self.problems:
            self.problems.append(FieldProblem(field, message))
        self.detail = detail or {}

    @property
    def field(self) -> str | None:
        return self.problems[0].field if self.problems else None

    def summary(self) -> str:
        """The refusal in one line: every problem as 'field: message' (a message that already
        starts with its field as it is), or the message when no field is named."""
        return "; ".join(
            p.message if p.message.startswith(p.field) else f"{p.field}: {p.message}" for p in self.problems
        ) or self.message


class ValidationFailed(DomainError):
    """The input breaks a rule: the message names the field and the rule."""

    code = "validation_failed"


class NotFound(DomainError):
    """The thing does not exist, or the caller may not know that it does."""

    code = "not_found"


class PermissionDenied(DomainError):
    """The caller is known but may not do this."""

    code = "permission_denied"


class AuthenticationFailed(DomainError):
    """The caller could not be identified."""

    code = "authentication_failed"


class Conflict(DomainError):
    """The request collides with the current state (a booking, a resend, a duplicate)."""

    code = "conflict"


@dataclass
class _Collector:
    problems: list[FieldProblem] = field(default_factory=list)

    def add(self, field_name: str, message: str) -> None:
        self.problems.append(FieldProblem(field_name, message))

    def raise_if_any(self, summary: str = "The input is not valid") -> None:
        if self.problems:
            first = self.problems[0]
            text = summary if len(self.problems) > 1 else f"{first.field}: {first.message}"
            raise ValidationFailed(text, problems=self.problems)


def collector() -> _Collector:
    """Gather several field problems, then raise them together."""
    return _Collector()
