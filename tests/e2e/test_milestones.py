"""Milestones and recognition end to end: signed requests to the real HTTP endpoint, the scheduler driven
with a frozen clock, and what people see in the fake Slack."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.conftest import ALICE, BOB, CAROL, DAN, PARTNER_PAT, Harness, flatten, start_harness
from tests.fakes import FakeSlack
from tests.support.clock import FrozenClock

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(berlin(2026, 3, 2, 8, 0))  # Monday morning


@pytest.fixture
def hc(fake: FakeSlack, tmp_path: Any, clock: FrozenClock) -> Iterator[Harness]:
    fake.clock = clock.epoch
    harness = start_harness(fake, tmp_path, clock=clock)
    yield harness
    harness.close()


def setup_partnership(h: Harness) -> str:
    """Acme: Alice owns it, Bob and Carol are on our side, Pat on the partner's; Dan is not in it."""
    h.command("new Acme")
    cid = str(h.channel("partner-acme").id)
    for user in (BOB, CAROL, PARTNER_PAT):
        h.command(f"add <@{user}|{user.lower()}>", channel=cid)
    return cid


def channel_texts(h: Harness, cid: str) -> list[str]:
    return [flatten(m) for m in h.fake.messages(cid)]


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["text"]["text"]: e for b in message.get("blocks", []) if b["type"] == "actions" for e in b["elements"]}


def click(h: Harness, user: str, message: dict[str, Any], label: str, channel: str | None = None) -> None:
    button = buttons(message)[label]
    h.sender.block_action(button["action_id"], button["value"], user_id=user, channel_id=channel,
                          message=message if "ts" in message else None)
    h.wait()


def form_values(**fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "title": {"type": "plain_text_input", "value": fields.get("title", "Contract signed")},
        "done_means": {"type": "plain_text_input", "value": fields.get("done_means", "Both legal teams signed")},
        "due_date": {"type": "datepicker", "selected_date": fields.get("due", "2026-03-27")},
        "milestone_owners": {"type": "multi_users_select", "selected_users": fields.get("owners", [CAROL])},
        "celebrate": {"type": "checkboxes", "selected_options": [{"value": "yes"}] if fields.get("celebrate", True)
                      else []},
    }
    return {block: {block: value} for block, value in values.items()}


def done_values(contributors: list[str], note: str) -> dict[str, Any]:
    return {"contributors": {"contributors": {"type": "multi_users_select", "selected_users": contributors}},
            "note": {"note": {"type": "plain_text_input", "value": note}}}


def test_add_list_remind_overdue_and_reschedule(hc: Harness, clock: FrozenClock) -> None:
    h = hc
    cid = setup_partnership(h)
    # By command, with curly quotes: added at once and announced in the channel.
    said = h.command(f"milestone add \u201cPilot live\u201d 2026-03-20 <@{BOB}|bob> <@{PARTNER_PAT}|pat>", channel=cid)
    assert "Added milestone #1 *Pilot live* due Fri 20 Mar" in said.text
    h.tick()
    assert any(f"New milestone #1 *Pilot live* due Fri 20 Mar, owners <@{BOB}>, <@{PARTNER_PAT}>" in t
               for t in channel_texts(h, cid))

    # By form: a date in the past and a long title are refused under their inputs, keeping what was typed.
    h.command("milestone add", channel=cid)
    form = h.fake.open_views(ALICE)[-1]["view"]
    assert form["callback_id"] == "milestone_add"
    _, ack = h.sender.submit_view(form, form_values(due="2026-03-01", title="x" * 151), user_id=ALICE)
    assert ack["response_action"] == "errors"
    assert "limit is 150" in ack["errors"]["title"]
    _, ack = h.sender.submit_view(form, form_values(due="2026-03-01"), user_id=ALICE)
    assert "in the past" in ack["errors"]["due_date"]
    _, ack = h.sender.submit_view(form, form_values(owners=[DAN]), user_id=ALICE)
    assert "recorded in the partnership" in ack["errors"]["milestone_owners"]
    _, ack = h.sender.submit_view(form, form_values(), user_id=ALICE)
    h.wait()
    assert not ack
    assert "Added milestone #2 *Contract signed* due Fri 27 Mar" in h.dm_text(ALICE) + flatten(
        h.fake.responses(h.sender.last_response_url))

    # The list: soonest first with days left, and the buttons of each open one.
    listed = h.command("milestones", channel=cid, user=CAROL)
    text = listed.text
    assert text.index("Pilot live") < text.index("Contract signed")
    assert "18 days left" in text and "25 days left" in text
    [message] = [m for m in listed.messages if isinstance(m, dict) and m.get("blocks")]
    assert {"Mark done", "Reschedule", "Edit", "Cancel"} <= set(buttons(message))

    # 7 days and 1 day before, at 09:00 Berlin time, the milestone's owners get a private reminder.
    clock.set(berlin(2026, 3, 13, 8, 59))
    h.tick()
    assert h.fake.dm_messages(BOB) == []
    clock.set(berlin(2026, 3, 13, 9, 0))
    h.tick()
    for owner in (BOB, PARTNER_PAT):
        [reminder] = h.fake.dm_messages(owner)
        assert "*Pilot live* of *Acme* is due in 7 days, on Fri 20 Mar" in flatten(reminder)
        assert "Mark done" in buttons(reminder)
    assert h.fake.dm_messages(ALICE) == [] or all("Pilot live" not in flatten(m) for m in h.fake.dm_messages(ALICE))
    clock.set(berlin(2026, 3, 19, 9, 0))
    h.tick()
    assert "is due tomorrow, on Fri 20 Mar" in flatten(h.fake.dm_messages(BOB)[-1])

    # Still open the day after: one overdue note in the channel.
    clock.set(berlin(2026, 3, 21, 9, 0))
    h.tick()
    h.tick()
    overdue = [t for t in channel_texts(h, cid) if "is still open" in t]
    assert len(overdue) == 1 and "was due Fri 20 Mar" in overdue[0] and "1 day late" in overdue[0]
    assert "1 day late" in h.command("milestones", channel=cid).text

    # A person who owns neither the partnership nor the milestone may not reschedule it.
    note = next(m for m in h.fake.messages(cid) if "is still open" in flatten(m))
    click(h, DAN, note, "Reschedule", cid)
    assert h.fake.open_views(DAN) == []
    assert "Only the owners of *Acme* and of milestone #1" in flatten(h.fake.responses(h.sender.last_response_url))

    # Its owner reschedules it from the overdue note: announced with both dates, reminders re-planned.
    click(h, BOB, note, "Reschedule", cid)
    form = h.fake.open_views(BOB)[-1]["view"]
    _, ack = h.sender.submit_view(form, {"due_date": {"due_date": {"type": "datepicker",
                                                                   "selected_date": "2026-03-20"}}}, user_id=BOB)
    assert "in the past" in ack["errors"]["due_date"]
    _, ack = h.sender.submit_view(form, {"due_date": {"due_date": {"type": "datepicker",
                                                                   "selected_date": "2026-04-03"}}}, user_id=BOB)
    h.wait()
    assert not ack
    h.tick()
    assert any(f"<@{BOB}> rescheduled milestone #1 *Pilot live* from Fri 20 Mar to Fri 03 Apr" in t
               for t in channel_texts(h, cid))
    listed = h.command("milestones", channel=cid).text
    assert "first planned for Fri 20 Mar" in listed and "13 days left" in listed
    assert "moved milestone #1 from 2026-03-20 to 2026-04-03 (first planned for 2026-03-20)" in h.command(
        "info", channel=cid).text
    clock.set(berlin(2026, 3, 27, 9, 0))  # 7 days before the new date (and Contract signed's due date)
    h.tick()
    assert "due in 7 days, on Fri 03 Apr" in flatten(h.fake.dm_messages(BOB)[-1])


def test_mark_done_celebrates_once_with_both_sides_then_reopen(hc: Harness, clock: FrozenClock) -> None:
    h = hc
    cid = setup_partnership(h)
    h.command(f'milestone add "Pilot <!channel> live" 2026-03-20 <@{BOB}|bob>', channel=cid)
    h.tick()
    clock.set(berlin(2026, 3, 13, 9, 0))
    h.tick()
    [reminder] = h.fake.dm_messages(BOB)

    # Dan is in neither: refused privately; Bob (the milestone's owner) opens the form from his reminder.
    click(h, DAN, reminder, "Mark done", reminder["channel"])
    assert h.fake.open_views(DAN) == []
    clock.set(berlin(2026, 3, 17, 15, 0))
    click(h, BOB, reminder, "Mark done", reminder["channel"])
    form = h.fake.open_views(BOB)[-1]["view"]
    assert form["blocks"][1]["element"]["initial_users"] == [BOB]  # pre-filled with the owners
    _, ack = h.sender.submit_view(form, done_values([BOB, DAN], "x"), user_id=BOB)
    assert "recorded in the partnership" in ack["errors"]["contributors"]
    _, ack = h.sender.submit_view(form, done_values([BOB, PARTNER_PAT, CAROL], "Live in <!here> 3 regions"),
                                  user_id=BOB)
    h.wait()
    assert not ack
    # A double click: the second submission is refused, the celebration is posted once.
    _, ack = h.sender.submit_view(form, done_values([BOB], "again"), user_id=BOB)
    assert "already marked done" in ack["errors"]["contributors"]
    h.tick()
    celebrations = [m for m in h.fake.messages(cid) if "Milestone reached" in flatten(m)]
    assert len(celebrations) == 1
    seen = flatten(celebrations[0])
    assert "3 days early" in seen and "planned Fri 20 Mar, done Tue 17 Mar" in seen
    assert f"*Our side:* <@{BOB}>, <@{CAROL}>" in seen and f"*Partner's side:* <@{PARTNER_PAT}>" in seen
    assert "Live in &lt;!here&gt; 3 regions" in seen and "Pilot @channel live" in seen  # typed as text, shown as text
    assert "<!here>" not in seen and "<!channel>" not in seen
    assert "planned Fri 20 Mar, done Tue 17 Mar (3 days early)" in h.command("milestones", channel=cid).text

    # The overdue note does not come for a done milestone.
    clock.set(berlin(2026, 3, 21, 9, 0))
    h.tick()
    assert not [t for t in channel_texts(h, cid) if "is still open" in t]

    # Reopening (owners only) says so in the channel.
    assert "Only the owners" in h.command("milestone reopen 1", channel=cid, user=CAROL).text
    assert "Reopened milestone #1" in h.command("milestone reopen 1", channel=cid).text
    h.tick()
    assert any(f"<@{ALICE}> reopened milestone #1" in t for t in channel_texts(h, cid))
    assert "1 day late" in h.command("milestones", channel=cid).text


def test_a_milestone_not_to_celebrate_is_only_recorded(hc: Harness, clock: FrozenClock) -> None:
    h = hc
    cid = setup_partnership(h)
    h.command("milestone add", channel=cid)
    form = h.fake.open_views(ALICE)[-1]["view"]
    h.sender.submit_view(form, form_values(celebrate=False, title="Quiet one"), user_id=ALICE)
    h.wait()
    h.command("milestone done quiet", channel=cid)
    form = h.fake.open_views(ALICE)[-1]["view"]
    assert form["callback_id"] == "milestone_done"
    h.sender.submit_view(form, done_values([CAROL], ""), user_id=ALICE)
    h.wait()
    h.tick()
    assert not [m for m in h.fake.messages(cid) if "Milestone reached" in flatten(m)]
    assert "1 milestones reached" not in h.command("wins", channel=cid).text
    assert "*Milestones reached:* 1 (100% on time)" in h.command("wins", channel=cid).text
    assert "has no open milestone" in h.command("milestone done nothing-like-it", channel=cid).text


def test_kudos_values_wins_and_refusals(hc: Harness, clock: FrozenClock) -> None:
    h = hc
    cid = setup_partnership(h)
    said = h.command(f"kudos <@{PARTNER_PAT}|pat> <@{CAROL}|carol> for the API keys <!channel> #delivery",
                     channel=cid, user=BOB)
    assert "Your kudos are posted" in said.text
    h.tick()
    [post] = [m for m in h.fake.messages(cid) if "thanks" in flatten(m)]
    seen = flatten(post)
    assert f"<@{BOB}> thanks <@{PARTNER_PAT}>, <@{CAROL}>" in seen
    assert "for the API keys @channel" in seen and "#delivery" in seen and "across organizations" in seen
    h.command(f"kudos <@{BOB}|bob> quick review", channel=cid, user=CAROL)
    h.tick()
    assert "across organizations" not in flatten([m for m in h.fake.messages(cid) if "thanks" in flatten(m)][-1])

    assert "leave yourself out" in h.command(f"kudos <@{BOB}|bob> me", channel=cid, user=BOB).text
    assert "not in *Acme*" in h.command(f"kudos <@{DAN}|dan> thanks", channel=cid, user=BOB).text
    assert "Say why" in h.command(f"kudos <@{CAROL}|carol> #trust", channel=cid, user=BOB).text
    assert "Only people in the *Acme* partnership" in h.command(f"kudos <@{BOB}|bob> hi", channel=cid, user=DAN).text
    assert "Say who to thank" in h.command("kudos great work", channel=cid, user=BOB).text

    assert "`#trust`" in h.command("values", channel=cid, user=BOB).text
    assert "Only owners" in h.command("values #speed", channel=cid, user=BOB).text
    assert "`#speed` `#care`" in h.command("values #speed, #care", channel=cid).text
    h.command(f"kudos <@{BOB}|bob> fast turnaround #speed", channel=cid, user=PARTNER_PAT)
    h.tick()
    assert "#speed" in flatten(h.fake.messages(cid)[-1])

    wins = h.command("wins 30d", channel=cid).text
    assert "*Kudos:* 3 (67% across organizations)" in wins
    assert f"<@{BOB}> (2)" in wins  # received twice (and gave once)
    assert "Our side 2, Partner's side 1" in wins  # given by side
    assert "is not a window" in h.command("wins 7y", channel=cid).text
    # Nothing from those texts reached the channel as a mention.
    assert not [m for m in h.fake.messages(cid) if "<!channel>" in flatten(m) or "<!here>" in flatten(m)]


def test_the_monthly_recap_on_the_first_working_day(hc: Harness, clock: FrozenClock) -> None:
    h = hc
    clock.set(berlin(2026, 2, 20, 10, 0))
    cid = setup_partnership(h)
    h.command(f'milestone add "Pilot" 2026-02-27 <@{BOB}|bob>', channel=cid)
    h.command(f"kudos <@{PARTNER_PAT}|pat> great demo", channel=cid, user=BOB)
    h.command(f"kudos <@{PARTNER_PAT}|pat> and the docs", channel=cid, user=CAROL)
    h.command(f"kudos <@{CAROL}|carol> the slides", channel=cid, user=PARTNER_PAT)
    h.tick()
    clock.set(berlin(2026, 2, 25, 11, 0))
    h.command("milestone done 1", channel=cid)
    h.sender.submit_view(h.fake.open_views(ALICE)[-1]["view"], done_values([BOB, PARTNER_PAT], "done"), user_id=ALICE)
    h.wait()
    h.tick()
    # 1 March 2026 is a Sunday: the recap comes on Monday the 2nd at 09:00 Berlin time.
    clock.set(berlin(2026, 3, 1, 9, 0))
    h.tick()
    assert not [t for t in channel_texts(h, cid) if "February 2026 wins" in t]
    clock.set(berlin(2026, 3, 2, 9, 0))
    h.tick()
    [recap] = [t for t in channel_texts(h, cid) if "February 2026 wins" in t]
    assert "*Milestones reached:* 1 (100% on time)" in recap and "*Kudos:* 3 (100% across organizations)" in recap
    assert f"*Most thanked, Partner's side:* <@{PARTNER_PAT}> (2)" in recap
    assert f"*Most thanked, Our side:* <@{CAROL}> (1)" in recap
    h.tick()
    assert len([t for t in channel_texts(h, cid) if "February 2026 wins" in t]) == 1
    # A month without wins gets no recap.
    clock.set(berlin(2026, 4, 1, 9, 0))
    h.tick()
    assert not [t for t in channel_texts(h, cid) if "March 2026 wins" in t]


def test_refusals_are_private_and_say_what_to_do(hc: Harness) -> None:
    h = hc
    cid = setup_partnership(h)
    assert "Only owners of *Acme* can add milestones" in h.command(
        'milestone add "Pilot" 2026-03-20', channel=cid, user=BOB).text
    said = h.command('milestone add "Pilot" 20/03/2026', channel=cid).text
    assert "Give the due date as YYYY-MM-DD" in said
    assert "not a date: use YYYY-MM-DD" in h.command('milestone add "Pilot" 2026-02-30', channel=cid).text
    assert "in the past" in h.command('milestone add "Pilot" 2026-03-01', channel=cid).text
    assert "limit is 150" in h.command(f'milestone add "{"x" * 151}" 2026-03-20', channel=cid).text
    said = h.command(f'milestone add "Pilot" 2026-03-20 <@{DAN}|dan>', channel=cid).text
    assert f"<@{DAN}> is not in *Acme*" in said and "/partner add @person" in said
    assert "has no open milestone “Nope”" in h.command("milestone done Nope", channel=cid).text
    assert "`frob` is not a milestone command" in h.command("milestone frob", channel=cid).text
    assert "works inside a partnership channel" in h.command("milestones").text
    assert not [t for t in channel_texts(h, cid) if "New milestone" in t]
    h.tick()
    assert not [t for t in channel_texts(h, cid) if "New milestone" in t]


def test_edit_and_cancel_from_the_list(hc: Harness) -> None:
    h = hc
    cid = setup_partnership(h)
    h.command(f'milestone add "Pilot" 2026-03-20 <@{CAROL}|carol>', channel=cid)
    listed = h.command("milestones", channel=cid, user=CAROL)
    [message] = [m for m in listed.messages if isinstance(m, dict) and m.get("blocks")]
    click(h, DAN, message, "Edit", cid)
    assert h.fake.open_views(DAN) == []
    click(h, CAROL, message, "Edit", cid)  # the milestone's owner may
    form = h.fake.open_views(CAROL)[-1]["view"]
    assert form["callback_id"] == "milestone_edit" and form["blocks"][1]["element"]["initial_value"] == "Pilot"
    _, ack = h.sender.submit_view(form, form_values(title="Pilot in 3 regions", owners=[CAROL, PARTNER_PAT]),
                                  user_id=CAROL)
    h.wait()
    assert not ack
    assert f"*Pilot in 3 regions* · due Fri 20 Mar · *18 days left* · owners <@{CAROL}>, <@{PARTNER_PAT}>" in \
        h.command("milestones", channel=cid).text
    click(h, BOB, message, "Cancel", cid)
    assert "Only the owners of *Acme* and of milestone #1" in flatten(h.fake.responses(h.sender.last_response_url))
    click(h, ALICE, message, "Cancel", cid)
    assert "Cancelled milestone #1" in flatten(h.fake.responses(h.sender.last_response_url))
    h.tick()
    assert any(f"<@{ALICE}> cancelled milestone #1 *Pilot in 3 regions*" in t for t in channel_texts(h, cid))
    assert "No milestones yet" in h.command("milestones", channel=cid).text


def test_an_owner_removed_from_the_partnership_can_no_longer_change_the_milestone(hc: Harness) -> None:
    h = hc
    cid = setup_partnership(h)
    h.command(f'milestone add "Pilot" 2026-03-20 <@{BOB}|bob>', channel=cid)
    h.tick()
    listed = h.command("milestones", channel=cid, user=BOB)
    [message] = [m for m in listed.messages if isinstance(m, dict) and m.get("blocks")]
    h.command(f"remove <@{BOB}|bob>", channel=cid)
    h.tick()
    before = len(h.fake.messages(cid))
    for label in ("Cancel", "Edit", "Reschedule", "Mark done"):
        click(h, BOB, message, label, cid)
        assert "Only people in the *Acme* partnership" in flatten(h.fake.responses(h.sender.last_response_url))
    assert h.fake.open_views(BOB) == []
    h.tick()
    assert len(h.fake.messages(cid)) == before  # nothing posted
    assert "Pilot* · due Fri 20 Mar · *18 days left*" in h.command("milestones", channel=cid).text


def test_an_edit_keeps_an_owner_and_an_owner_outside_is_told_how_to_add_them(hc: Harness) -> None:
    h = hc
    cid = setup_partnership(h)
    h.command(f'milestone add "Pilot" 2026-03-20 <@{CAROL}|carol>', channel=cid)
    listed = h.command("milestones", channel=cid)
    [message] = [m for m in listed.messages if isinstance(m, dict) and m.get("blocks")]
    click(h, ALICE, message, "Edit", cid)
    form = h.fake.open_views(ALICE)[-1]["view"]
    _, ack = h.sender.submit_view(form, form_values(title="Pilot", owners=[]), user_id=ALICE)
    assert "at least one owner" in ack["errors"]["milestone_owners"]
    _, ack = h.sender.submit_view(form, form_values(title="Pilot", owners=[DAN]), user_id=ALICE)
    error = ack["errors"]["milestone_owners"]
    assert "/partner add @person" in error and len(error) <= 150
    h.wait()
    assert f"owners <@{CAROL}>" in h.command("milestones", channel=cid).text
    h.command("milestone add", channel=cid)
    _, ack = h.sender.submit_view(h.fake.open_views(ALICE)[-1]["view"], form_values(owners=[DAN]), user_id=ALICE)
    assert "/partner add @person" in ack["errors"]["milestone_owners"]


def test_forms_are_checked_again_when_submitted(hc: Harness) -> None:
    h = hc
    cid = setup_partnership(h)
    h.command(f'milestone add "Pilot" 2026-03-20 <@{CAROL}|carol>', channel=cid)
    listed = h.command("milestones", channel=cid)
    [message] = [m for m in listed.messages if isinstance(m, dict) and m.get("blocks")]
    forms = {}
    for label in ("Edit", "Reschedule", "Mark done"):
        click(h, ALICE, message, label, cid)
        forms[label] = h.fake.open_views(ALICE)[-1]["view"]
    h.command("milestone add", channel=cid)
    forms["Add"] = h.fake.open_views(ALICE)[-1]["view"]
    h.tick()
    posted = len(h.fake.messages(cid))
    values = {"Edit": form_values(title="Hijacked", owners=[CAROL]), "Add": form_values(title="Sneaked in"),
              "Reschedule": {"due_date": {"due_date": {"type": "datepicker", "selected_date": "2026-04-30"}}},
              "Mark done": done_values([CAROL], "not really")}
    # Dan is not in the partnership; Bob is a plain member who owns neither it nor the milestone.
    for user in (DAN, BOB):
        for label, form in forms.items():
            _, ack = h.sender.submit_view(form, values[label], user_id=user)
            h.wait()  # refused under the form, before it closes
            assert ack["response_action"] == "errors", (user, label)
            assert "Only" in " ".join(ack["errors"].values()), (user, label)
    h.tick()
    assert len(h.fake.messages(cid)) == posted  # nothing announced
    listed_now = h.command("milestones", channel=cid).text
    assert f"#1 *Pilot* · due Fri 20 Mar · *18 days left* · owners <@{CAROL}>" in listed_now
    assert "Hijacked" not in listed_now and "Sneaked" not in listed_now and "Recently done" not in listed_now


def test_values_without_a_value_are_refused_and_default_resets_them(hc: Harness) -> None:
    h = hc
    cid = setup_partnership(h)
    assert "`#speed`" in h.command("values #speed", channel=cid).text
    for raw in ("#", "# ,", "##"):
        said = h.command(f"values {raw}", channel=cid).text
        assert "Give the values" in said and "/partner values #trust" in said
    assert "`#speed`" in h.command("values", channel=cid, user=BOB).text  # unchanged
    assert "`#trust` `#communication` `#delivery` `#collaboration`" in h.command("values default", channel=cid).text


def test_the_reschedule_and_cancel_commands(hc: Harness) -> None:
    h = hc
    cid = setup_partnership(h)
    h.command(f'milestone add "Pilot" 2026-03-20 <@{BOB}|bob>', channel=cid)
    h.command(f'milestone add "Launch" 2026-03-27 <@{BOB}|bob>', channel=cid)
    assert "Usage: `/partner milestone reschedule <number> <YYYY-MM-DD>`" in h.command(
        "milestone reschedule 1", channel=cid).text
    assert "'20/03/2026' is not a date: use YYYY-MM-DD" in h.command(
        "milestone reschedule 1 20/03/2026", channel=cid).text
    assert "is now due Thu 02 Apr" in h.command("milestone reschedule pilot 2026-04-02", channel=cid).text
    # Done ones are found by title to reopen, not to cancel or reschedule.
    h.command("milestone done Launch", channel=cid)
    h.sender.submit_view(h.fake.open_views(ALICE)[-1]["view"], done_values([BOB], ""), user_id=ALICE)
    h.wait()
    assert "has no open milestone “Launch”" in h.command("milestone cancel Launch", channel=cid).text
    assert "has no open milestone “Launch”" in h.command("milestone reschedule Launch 2026-04-09", channel=cid).text
    assert "Reopened milestone #2 *Launch*" in h.command("milestone reopen Launch", channel=cid).text
    assert "has no done milestone “Pilot”" in h.command("milestone reopen Pilot", channel=cid).text
    assert "Cancelled milestone #1 *Pilot*" in h.command("milestone cancel Pilot", channel=cid).text


def test_titles_typed_in_the_form_are_shown_as_text(hc: Harness, clock: FrozenClock) -> None:
    h = hc
    cid = setup_partnership(h)
    title = f"A <!channel> & <@{BOB}>"
    shown = f"A &lt;!channel&gt; &amp; &lt;@{BOB}&gt;"
    h.command("milestone add", channel=cid)
    h.sender.submit_view(h.fake.open_views(ALICE)[-1]["view"], form_values(title=title, owners=[CAROL]),
                         user_id=ALICE)
    h.wait()
    h.tick()
    listed = h.command("milestones", channel=cid).text
    h.command("milestone done 1", channel=cid)
    h.sender.submit_view(h.fake.open_views(ALICE)[-1]["view"], done_values([CAROL], ""), user_id=ALICE)
    h.wait()
    h.tick()
    [note] = [m for m in h.fake.messages(cid) if "New milestone" in flatten(m)]
    [celebration] = [m for m in h.fake.messages(cid) if "Milestone reached" in flatten(m)]
    for seen in (mrkdwn(note), listed, mrkdwn(celebration)):
        assert shown in seen
        assert "<!channel>" not in seen and f"<@{BOB}>" not in seen


def mrkdwn(message: dict[str, Any]) -> str:
    """The texts Slack reads mentions in: the message's text and its mrkdwn blocks (not plain-text headers)."""
    found = [message.get("text") or ""]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(node.get("text") or "")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message.get("blocks"))
    return "\n".join(found)
