"""A poll's CSV export end to end: the Export CSV button and `/partner poll export` over the real HTTP endpoint,
the file uploaded to the fake Slack (upload v2) and shared in the requester's direct message only."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import ALICE, BOB, CAROL, DAN, Harness, new_fake, start_harness
from tests.e2e.test_polls import START, buttons, click, partnership, polls
from tests.fakes import FakeSlack
from tests.support.clock import FrozenClock


@pytest.fixture(scope="module")
def shared_fake() -> Iterator[FakeSlack]:
    fake = new_fake()
    yield fake
    fake.stop()


@pytest.fixture
def hp(shared_fake: FakeSlack, tmp_path: Path) -> Iterator[Harness]:
    clock = FrozenClock(START)
    shared_fake.clock = clock.epoch
    harness = start_harness(shared_fake, tmp_path, clock=clock)
    yield harness
    harness.close()


def files_of(h: Harness, user: str) -> list[dict[str, object]]:
    """The files shared in the person's direct message with the app, oldest first."""
    return [h.fake.files[f["id"]] for m in h.fake.dm_messages(user) for f in m.get("files") or []]


def rows_of(upload: dict[str, object]) -> tuple[str, list[dict[str, str]]]:
    content = upload["content"]
    assert isinstance(content, bytes)
    text = content.decode("utf-8-sig")
    return text, list(csv.DictReader(io.StringIO(text)))


def test_the_export_button_sends_the_creator_the_csv_and_refuses_others(hp: Harness) -> None:
    h = hp
    cid = partnership(h)
    h.command('poll "Which launch date?" "=March 3" "March 10"', channel=cid, user=BOB)
    h.tick()
    [poll] = polls(h, cid)
    assert {"Close poll", "Export CSV"} <= set(buttons(poll))  # everyone sees it
    click(h, CAROL, poll, "=March 3")
    click(h, BOB, poll, "March 10")
    before = {u: len(files_of(h, u)) for u in (BOB, CAROL)}  # one fake Slack for the module
    assert "can export it" in click(h, CAROL, poll, "Export CSV")
    assert len(files_of(h, CAROL)) == before[CAROL]
    assert "in your direct message" in click(h, BOB, poll, "Export CSV")
    [upload] = files_of(h, BOB)[before[BOB]:]
    dm = h.fake.dm_channel(BOB)
    assert dm is not None and upload["channels"] == [dm.id]  # only there
    assert upload["filename"] == "poll-1-which-launch-date.csv" and "Poll #1" in str(upload["title"])
    _, rows = rows_of(upload)
    assert [(r["answer"], r["voter_id"], r["voter_name"], r["side"]) for r in rows] == [
        ("'=March 3", CAROL, "carol", "ours"), ("March 10", BOB, "bob", "ours")]
    assert rows[0]["answered_at_utc"] == START.isoformat()


def test_an_anonymous_poll_exported_by_command_names_nobody(hp: Harness) -> None:
    h = hp
    cid = partnership(h)
    h.command('poll "How is the pilot going?" "=Well" "Badly" anonymous', channel=cid, user=BOB)
    h.tick()
    [poll] = polls(h, cid)
    click(h, CAROL, poll, "=Well")
    assert "once 3 people have answered" in h.command("poll export", channel=cid).text
    assert "can export it" in h.command("poll export 1", channel=cid, user=CAROL).text
    assert "Closed poll #1" in h.command("poll close", channel=cid).text
    h.tick()
    before = len(files_of(h, ALICE))
    assert "in your direct message" in h.command("poll export", channel=cid).text  # the newest poll, closed
    [upload] = files_of(h, ALICE)[before:]
    text, rows = rows_of(upload)
    assert [r["answer"] for r in rows] == ["'=Well"] and list(rows[0]) == [
        "poll", "question", "answered_on_utc", "answer", "side"]
    for person in (ALICE, BOB, CAROL, DAN):
        assert person not in text and person.lower()[1:] not in text.lower()
    assert "not a poll number" in h.command("poll export three", channel=cid).text
    assert "There is no poll #7" in h.command("poll export 7", channel=cid).text


def test_an_upload_slack_refuses_is_answered_privately_with_what_to_do(hp: Harness) -> None:
    h = hp
    cid = partnership(h)
    h.command('poll "Lunch?" "Yes" "No"', channel=cid)
    h.tick()
    before = len(files_of(h, ALICE))  # one fake Slack for the module
    h.fake.fail("files.getUploadURLExternal", "file_uploads_disabled")
    said = h.command("poll export", channel=cid).text
    assert "file_uploads_disabled" in said and "ask a Slack admin" in said
    assert len(files_of(h, ALICE)) == before
