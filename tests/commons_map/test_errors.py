"""A domain refusal in one line, as the command line and the phones show it."""

from commons_map.errors import FieldProblem, PermissionDenied, ValidationFailed


def test_summary_names_every_field_once():
    exc = ValidationFailed("Some measurements are not valid", problems=[
        FieldProblem("measurements[0].value", "9 g/cm3 is beyond any soil"),
        FieldProblem("sampled_on", "sampled_on: 2099-01-01 is in the future"),
    ])
    assert exc.summary() == ("measurements[0].value: 9 g/cm3 is beyond any soil;"
                             " sampled_on: 2099-01-01 is in the future")


def test_summary_is_the_message_when_no_field_is_named():
    assert PermissionDenied("Only coordinators may do this").summary() == "Only coordinators may do this"
    assert ValidationFailed("hours: the duration is missing", field="hours").summary() == (
        "hours: the duration is missing")
