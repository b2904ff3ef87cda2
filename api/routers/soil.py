"""/api/v1/soil: indicators, samples, practices, harvests, parcel summaries, timelines, reports, charts."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from api.deps import CurrentMember, OptionalMember, SessionDep
from api.errors import request_locale
from commons_map.db import DbId
from commons_map.errors import PermissionDenied, ValidationFailed
from commons_map.fieldforms.attachments import attachments_out
from commons_map.people.models import Member
from commons_map.soil import charts, printable, reports, service
from commons_map.soil import crops as crop_catalogue
from commons_map.soil.schemas import (
    CropIn,
    CropOut,
    CropPatch,
    HarvestIn,
    HarvestOut,
    IndicatorIn,
    IndicatorOut,
    PracticeIn,
    PracticeOut,
    SampleCorrectionIn,
    SampleHistoryOut,
    SampleIn,
    SampleOut,
    WithdrawalIn,
)
from commons_map.soil.status import STATUS_LABELS

router = APIRouter(prefix="/api/v1/soil", tags=["soil"])


def _coop(member: Member | None, cooperative_id: DbId | None) -> int:
    if cooperative_id is not None:
        return cooperative_id
    if member is None:
        raise ValidationFailed("soil.cooperative_required", field="cooperative_id")
    return member.cooperative_id


@router.get("/statuses")
def statuses() -> dict[str, Any]:
    """The regeneration statuses with their French and English labels and what they mean (map legend)."""
    return STATUS_LABELS


@router.get("/indicators", response_model=list[IndicatorOut])
def indicators(session: SessionDep, member: OptionalMember) -> list[Any]:
    """The indicator catalogue (shipped, and the caller's cooperative's own)."""
    return service.list_indicators(session, cooperative_id=member.cooperative_id if member else None)


@router.post("/indicators", response_model=IndicatorOut, status_code=201)
def add_indicator(body: IndicatorIn, session: SessionDep, member: CurrentMember) -> Any:
    """Add an indicator to the cooperative's catalogue (coordinators)."""
    return service.add_indicator(session, actor=member, data=body)


@router.get("/practices/kinds")
def practice_kinds() -> dict[str, Any]:
    """The practices that can be recorded, with labels and units."""
    return service.PRACTICES


@router.post("/samples", response_model=SampleOut, status_code=201)
def record_sample(body: SampleIn, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Record a sample and its measurements (a lab report is one sample)."""
    sample = service.record_sample(session, actor=member, data=body)
    return service.sample_out(session, sample, reader=member)


@router.get("/samples", response_model=list[SampleOut])
def list_samples(
    session: SessionDep, member: OptionalMember, commons_id: DbId | None = None, cooperative_id: DbId | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500, include_withdrawn: bool = False,
) -> list[dict[str, Any]]:
    """Samples on the parcels I may see (the withdrawn ones too with ``include_withdrawn``)."""
    rows = service.list_samples(session, actor=member, commons_id=commons_id, cooperative_id=cooperative_id,
                                limit=limit, include_withdrawn=include_withdrawn)
    return [service.sample_out(session, s, reader=member) for s in rows]


@router.get("/samples/{sample_id}", response_model=SampleOut)
def get_sample(sample_id: DbId, session: SessionDep, member: OptionalMember) -> dict[str, Any]:
    """One sample, when I may see its parcel (with the photos sent with its field form, for the members)."""
    out = service.sample_out(session, service.get_sample(session, actor=member, sample_id=sample_id), reader=member)
    return out | {"attachments": attachments_out(session, actor=member, kind="soil_sample", record_id=sample_id)}


@router.put("/samples/{sample_id}", response_model=SampleOut)
def correct_sample(sample_id: DbId, body: SampleCorrectionIn, session: SessionDep,
                   member: CurrentMember) -> dict[str, Any]:
    """Correct a sample (whoever recorded it, or a coordinator): every value again, and why; the former
    values stay in its history."""
    sample = service.correct_sample(session, actor=member, sample_id=sample_id, data=body)
    return service.sample_out(session, sample, reader=member)


@router.post("/samples/{sample_id}/withdraw", response_model=SampleOut)
def withdraw_sample(sample_id: DbId, body: WithdrawalIn, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Withdraw a sample (whoever recorded it, or a coordinator), saying why: it stays in its history
    and leaves every figure."""
    sample = service.withdraw_sample(session, actor=member, sample_id=sample_id, reason=body.reason)
    return service.sample_out(session, sample, reader=member)


@router.get("/samples/{sample_id}/history", response_model=list[SampleHistoryOut])
def sample_history(sample_id: DbId, session: SessionDep, member: CurrentMember) -> list[Any]:
    """A sample's corrections and withdrawal, with the values before and after (the cooperative's members)."""
    return [
        {"id": h.id, "sample_id": h.sample_id, "action": h.action, "member_id": h.member_id, "at": h.at,
         "reason": h.reason, "before": h.before, "after": h.after}
        for h in service.sample_history(session, actor=member, sample_id=sample_id)
    ]


@router.post("/practices", response_model=PracticeOut, status_code=201)
def record_practice(body: PracticeIn, session: SessionDep, member: CurrentMember) -> Any:
    """Record a practice applied to a parcel or a bed."""
    return service.record_practice(session, actor=member, data=body)


@router.get("/practices", response_model=list[PracticeOut])
def list_practices(
    session: SessionDep, member: OptionalMember, commons_id: DbId | None = None, cooperative_id: DbId | None = None,
) -> list[Any]:
    """Practices on the parcels I may see."""
    return service.list_practices(session, actor=member, commons_id=commons_id, cooperative_id=cooperative_id)


@router.post("/harvests", response_model=HarvestOut, status_code=201)
def record_harvest(body: HarvestIn, session: SessionDep, member: CurrentMember) -> dict[str, Any]:
    """Record a harvest and where the food went."""
    return service.harvest_out(service.record_harvest(session, actor=member, data=body), reader=member)


@router.get("/harvests", response_model=list[HarvestOut])
def list_harvests(
    session: SessionDep, member: OptionalMember, commons_id: DbId | None = None, cooperative_id: DbId | None = None,
    year: int | None = None, limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> list[dict[str, Any]]:
    """Harvests from the parcels I may see."""
    rows = service.list_harvests(session, actor=member, commons_id=commons_id, cooperative_id=cooperative_id,
                                 year=year, limit=limit)
    return [service.harvest_out(h, reader=member) for h in rows]


@router.get("/harvests/{harvest_id}", response_model=HarvestOut)
def get_harvest(harvest_id: DbId, session: SessionDep, member: OptionalMember) -> dict[str, Any]:
    """One harvest, when I may see its parcel (with the photos sent with its field form, for the members)."""
    out = service.harvest_out(service.get_harvest(session, actor=member, harvest_id=harvest_id), reader=member)
    return out | {"attachments": attachments_out(session, actor=member, kind="harvest", record_id=harvest_id)}


def _crop_out(crop: Any) -> CropOut:
    return CropOut(code=crop.code, label_fr=crop.label_fr, label_en=crop.label_en, aliases=list(crop.aliases),
                   active=crop.active, shared=crop.cooperative_id is None)


@router.get("/crops", response_model=list[CropOut])
def crops(session: SessionDep, member: OptionalMember, include_inactive: bool = False) -> list[CropOut]:
    """The crop catalogue harvests name (shared crops, and the caller's cooperative's own)."""
    rows = crop_catalogue.list_crops(session, cooperative_id=member.cooperative_id if member else None,
                                     include_inactive=include_inactive)
    return [_crop_out(c) for c in rows]


@router.post("/crops", response_model=CropOut, status_code=201)
def add_crop(body: CropIn, session: SessionDep, member: CurrentMember) -> CropOut:
    """Add a crop to the cooperative's catalogue (coordinators)."""
    return _crop_out(crop_catalogue.add_crop(session, actor=member, code=body.code, label_fr=body.label_fr,
                                             label_en=body.label_en, aliases=body.aliases))


@router.patch("/crops/{code}", response_model=CropOut)
def change_crop(code: str, body: CropPatch, session: SessionDep, member: CurrentMember) -> CropOut:
    """Retire, bring back or rename one of the cooperative's own crops (coordinators)."""
    return _crop_out(crop_catalogue.set_crop(session, actor=member, code=code, active=body.active,
                                             label_fr=body.label_fr, label_en=body.label_en))


@router.get("/parcels")
def parcels(session: SessionDep, member: OptionalMember, cooperative_id: DbId | None = None) -> list[dict[str, Any]]:
    """Status, SOC stock and change, CO2e and harvests of every parcel I may see."""
    coop = _coop(member, cooperative_id)
    sums = service.parcel_summaries(session, cooperative_id=coop, actor=member, visible_only=True)
    return [s.as_dict() for s in sums.values()]


@router.get("/parcels/{commons_id}")
def parcel(commons_id: DbId, session: SessionDep, member: OptionalMember) -> dict[str, Any]:
    """One parcel's soil and food figures."""
    return service.parcel_summary(session, actor=member, commons_id=commons_id).as_dict()


@router.get("/parcels/{commons_id}/timeline")
def timeline(
    commons_id: DbId, session: SessionDep, member: OptionalMember, format: Literal["json", "csv"] = "json",
) -> Any:
    """Observations, practices, harvests and work hours on a parcel, in order."""
    tl = reports.timeline(session, actor=member, commons_id=commons_id)
    if format == "csv":
        return Response(reports.timeline_csv(tl), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="timeline-{commons_id}.csv"'})
    return tl


@router.get("/report")
def annual_report(
    session: SessionDep, member: OptionalMember,
    year: Annotated[int | None, Query(ge=1990, le=2200, description="this year when left out")] = None,
    cooperative_id: DbId | None = None, format: Literal["json", "csv"] = "json",
) -> Any:
    """The cooperative's annual soil and food report (JSON or CSV)."""
    year = year or date.today().year
    rep = reports.annual_report(session, actor=member, cooperative_id=_coop(member, cooperative_id), year=year)
    if format == "csv":
        return Response(reports.report_csv(rep), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="soil-report-{year}.csv"'})
    return rep


@router.get("/report.html", response_class=HTMLResponse)
def printable_report(
    request: Request, session: SessionDep, member: OptionalMember,
    year: Annotated[int | None, Query(ge=1990, le=2200, description="this year when left out")] = None,
    cooperative_id: DbId | None = None,
) -> HTMLResponse:
    """The annual report as one printable page (print stylesheet, A4), its charts inside as SVG,
    in the reader's language (Accept-Language); print it, or save it as PDF, from the browser."""
    year = year or date.today().year
    coop = _coop(member, cooperative_id)
    rep = reports.annual_report(session, actor=member, cooperative_id=coop, year=year)
    series = reports.chart_series(session, actor=member, cooperative_id=coop)
    return HTMLResponse(printable.report_html(rep, series, locale=request_locale(request)))


@router.get("/charts/{name}.png")
def chart(
    name: Literal["soc", "yields", "exchange"], session: SessionDep, member: OptionalMember,
    cooperative_id: DbId | None = None,
    year: Annotated[int | None, Query(ge=1990, le=2200, description="exchange: this year when left out")] = None,
    lang: Literal["fr", "en"] | None = None,
) -> Response:
    """A chart as PNG: the SOC trend per parcel, yields per garden and year, or the year's exchanges
    in time (members of the cooperative only; French and English, or ``lang`` only)."""
    if name == "exchange":
        from commons_map.exchange import charts as exchange_charts

        rep = reports.exchange_figures(session, actor=member, cooperative_id=_coop(member, cooperative_id),
                                        year=year or date.today().year)
        if rep is None:
            raise PermissionDenied("people.members_only", field="cooperative_id")
        return Response(exchange_charts.figures_png(rep, locale=lang), media_type="image/png")
    data = reports.chart_series(session, actor=member, cooperative_id=_coop(member, cooperative_id))
    png = charts.soc_trend_png(data["soc"]) if name == "soc" else charts.yields_png(data["yields"])
    return Response(png, media_type="image/png")
