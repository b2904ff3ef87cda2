"""Every ORM model, imported once so that the metadata and the mappers are complete."""

from commons_map.people.models import Cooperative, Member, MemberRole  # noqa: F401
from commons_map.register.models import Commons, CommonsHistory, CommonsKind, Steward  # noqa: F401
