"""Refusals of a submitted form show under its inputs, as plain text within Slack's limit."""

from __future__ import annotations

from handlers.common import FORM_ERROR_MAX, form_errors
from tests.support.text import at_limit

VIEW = {"blocks": [{"type": "input", "block_id": "name"}, {"type": "input", "block_id": "timezone"}]}


def test_each_problem_goes_under_its_input_and_is_cut_to_slacks_limit() -> None:
    errors = form_errors("ignored", {"timezone": at_limit(400), "name": "Give the partnership a name"}, VIEW, "name")
    assert errors["name"] == "Give the partnership a name"
    assert len(errors["timezone"]) == FORM_ERROR_MAX and errors["timezone"].endswith("…")


def test_a_problem_with_no_input_of_its_own_goes_under_the_default_one() -> None:
    errors = form_errors("ignored", {"name": "Too long.", "owners": "Pick an owner."}, VIEW, "name")
    assert errors == {"name": "Too long. Pick an owner."}


def test_a_message_without_fields_shows_as_plain_text_under_the_default_input() -> None:
    errors = form_errors("Only owners of *A &amp; B* can do this: ask <@U1>.", {}, VIEW, "timezone")
    assert errors == {"timezone": "Only owners of *A & B* can do this: ask @U1."}
