"""Domain errors. They know nothing of HTTP: api/errors.py maps each to a status code.

A refusal is said with a message *code* and its parameters, never with an English sentence:

    raise ValidationFailed("ledger.self_payment", field="payee")
    raise LimitExceeded("ledger.limit_below", field="minutes", account=name, short_minutes=90)

``commons_map.messages`` renders the code in the reader's language (``exc.text("fr")``);
``exc.message`` is the English text, for logs. Several problems at once go through
:func:`collector`: ``problems.add("minutes", "ledger.minutes_not_positive", given=minutes)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from commons_map import messages

_RESERVED = ("field", "problems", "detail")


@dataclass
class FieldProblem:
    """One thing wrong with one field of the input: a message code and its parameters."""

    field: str
    code: str
    params: Mapping[str, Any] = field(default_factory=dict)
    legacy: str | None = None  # an English sentence not yet said with a code (its code is then input.invalid)

    def __post_init__(self) -> None:
        if not messages.is_code(self.code):
            self.legacy, self.code = self.code, "input.invalid"

    @property
    def message(self) -> str:
        """The problem in English (logs, and clients that read no code)."""
        return self.text("en")

    def text(self, locale: str) -> str:
        """The problem in ``locale``."""
        return self.legacy if self.legacy is not None else messages.render(self.code, self.params, locale)

    def as_dict(self, locale: str = "en") -> dict[str, Any]:
        """As the API's ``errors`` list carries it."""
        out: dict[str, Any] = {"field": self.field, "message": self.text(locale), "code": self.code}
        if self.params:
            out["params"] = {k: messages.plain(v) for k, v in self.params.items()}
        return out


class DomainError(Exception):
    """Base of every rule the domain refuses to break."""

    kind = "domain_error"

    def __init__(
        self,
        code: str,
        /,
        *,
        field: str | None = None,
        problems: list[FieldProblem] | None = None,
        detail: dict[str, Any] | None = None,
        **params: Any,
    ) -> None:
        self.legacy = None if messages.is_code(code) else code  # a sentence not yet said with a code
        self.code = type(self).kind if self.legacy is not None else code
        self.params = params
        self.problems = list(problems or [])
        if field is not None and not self.problems:
            self.problems.append(FieldProblem(field, code, params))
        self.detail = detail or {}
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The refusal in English, for logs."""
        return self.text("en")

    def text(self, locale: str) -> str:
        """The refusal in ``locale``."""
        if self.legacy is not None:
            return self.legacy
        return messages.render(self.code, self.params, locale)

    @property
    def field(self) -> str | None:
        return self.problems[0].field if self.problems else None

    def summary(self, locale: str = "en") -> str:
        """The refusal in one line: every problem as 'field: message', or the message alone."""
        lines = []
        for p in self.problems:
            text = p.text(locale)
            lines.append(text if text.startswith(p.field) else f"{p.field}: {text}")
        return "; ".join(lines) or self.text(locale)

    def as_dict(self, locale: str = "en") -> dict[str, Any]:
        """Code, parameters, text and problems: what the API and the notifications carry."""
        return {
            "code": self.code,
            "params": {k: messages.plain(v) for k, v in self.params.items()},
            "detail": self.text(locale),
            "errors": [p.as_dict(locale) for p in self.problems],
        }


class ValidationFailed(DomainError):
    """The input breaks a rule: the message names the field and the rule."""

    kind = "validation_failed"


class NotFound(DomainError):
    """The thing does not exist, or the caller may not know that it does."""

    kind = "not_found"


class PermissionDenied(DomainError):
    """The caller is known but may not do this."""

    kind = "permission_denied"


class AuthenticationFailed(DomainError):
    """The caller could not be identified."""

    kind = "authentication_failed"


class Conflict(DomainError):
    """The request collides with the current state (a booking, a resend, a duplicate)."""

    kind = "conflict"


@dataclass
class _Collector:
    problems: list[FieldProblem] = field(default_factory=list)

    def add(self, field_name: str, code: str, /, **params: Any) -> None:
        self.problems.append(FieldProblem(field_name, code, params))

    def raise_if_any(self, code: str = "input.invalid", /, **params: Any) -> None:
        """Raise the problems gathered: the one problem's own code, or ``code`` for several."""
        if len(self.problems) == 1:
            only = self.problems[0]
            raise ValidationFailed(only.code, problems=self.problems, **only.params)
        if self.problems:
            raise ValidationFailed(code, problems=self.problems, count=len(self.problems), **params)


def input_problem(err: Mapping[str, Any], field_name: str | None = None) -> FieldProblem:
    """One of pydantic's validation errors as a problem with a code: ``input.<its type>`` (``input.missing``,
    ``input.greater_than`` with ``gt``...), or ``input.invalid`` for a type the catalogue does not know."""
    if field_name is None:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header", "form")]
        field_name = ".".join(loc) or "body"
    kind = str(err.get("type", "invalid"))
    code = kind if messages.is_code(kind) else f"input.{kind}"  # PydanticCustomError("room.code", ...)
    if kind == "value_error" and err.get("msg"):
        # A validator's own ValueError, not yet said with a code: its words, as they are.
        return FieldProblem(field_name, str(err["msg"]).removeprefix("Value error, "))
    if not messages.is_code(code):
        code = "input.invalid"
    ctx = {k: v for k, v in (err.get("ctx") or {}).items() if isinstance(v, str | int | float | bool)}
    return FieldProblem(field_name, code, ctx)


def collector() -> _Collector:
    """Gather several field problems, then raise them together."""
    return _Collector()
