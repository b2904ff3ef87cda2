"""Every ORM model, imported once so that the metadata and the mappers are complete."""

from commons_map.clearing.models import ClearingLine, ClearingLineHistory, ClearingPayment  # noqa: F401
from commons_map.exchange.models import (  # noqa: F401
    Category,
    Exchange,
    ExchangeHistory,
    ExchangeMessage,
    FundSteward,
    Post,
    Support,
    Visit,
)
from commons_map.fieldforms.models import Attachment, FieldToken, Submission  # noqa: F401
from commons_map.governance import models as governance_models  # noqa: F401
from commons_map.ledger.models import Account, AccountHistory, Posting, Transfer  # noqa: F401
from commons_map.notify.models import Delivery, Notification, NotifySettings, Preference  # noqa: F401
from commons_map.partners.models import Partner, PartnerLayer  # noqa: F401
from commons_map.people.models import Cooperative, Member, MemberRole  # noqa: F401
from commons_map.people.throttle import LoginFailure  # noqa: F401
from commons_map.publish.models import PublicFigures, PublicFiguresDigest  # noqa: F401
from commons_map.register.models import Commons, CommonsHistory, CommonsKind, Steward  # noqa: F401
from commons_map.reservations.models import CalendarToken, Reservation, ReservationEvent, ResourceRules, WaitingEntry  # noqa: F401
from commons_map.soil.models import (  # noqa: F401
    Harvest,
    HarvestShare,
    Indicator,
    Measurement,
    Practice,
    Sample,
    SampleHistory,
)
from commons_map.worklog.models import Activity, WorkLog, WorkLogCompanion, WorkLogHistory  # noqa: F401
