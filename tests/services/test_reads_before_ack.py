"""What runs before Slack's 3-second ack only reads, so on SQLite it never waits behind a writer (the
scheduler claiming and completing posts holds the one write lock often)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.support.stack import ALICE, BOB, Stack, stack


@pytest.fixture(scope="module")
def st(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with stack(Path(tmp_path_factory.mktemp("reads"))) as s:
        yield s


@pytest.fixture(scope="module")
def channel(st: Stack) -> str:
    p = st.partnership(members=[BOB])
    assert p.channel_id
    return p.channel_id


@pytest.fixture(scope="module")
def round_key(st: Stack, channel: str) -> str:
    st.services.checkins.run_now(channel_id=channel, actor=ALICE, request_key="t1")
    st.tick()
    prompt = next(m for m in st.fake.messages(channel) if m.get("text", "").startswith("Check-in time"))
    return str(next(e for b in prompt["blocks"] if b["type"] == "actions" for e in b["elements"])["value"])


def finishes_while_a_writer_holds_the_lock(st: Stack, call: Callable[[], Any]) -> bool:
    """Run `call` in a thread while another thread is inside a write unit of work (its BEGIN IMMEDIATE
    done, so it holds SQLite's write lock); True when `call` finished without waiting for it."""
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with st.services.uow() as s:
            s.connection().execute(text("SELECT 1"))
            holding.set()
            release.wait(30)

    held = threading.Thread(target=writer)
    held.start()
    assert holding.wait(10)
    reader = threading.Thread(target=call)
    reader.start()
    reader.join(5)
    finished = not reader.is_alive()
    release.set()
    held.join(10)
    reader.join(30)
    return finished


def test_opening_the_setup_form_does_not_wait_for_a_writer(st: Stack, channel: str) -> None:
    assert finishes_while_a_writer_holds_the_lock(
        st, lambda: st.services.checkins.prepare_setup(channel_id=channel, actor=ALICE))


def test_opening_and_checking_the_answer_form_do_not_wait_for_a_writer(st: Stack, round_key: str) -> None:
    svc = st.services.checkins
    assert finishes_while_a_writer_holds_the_lock(st, lambda: svc.answer_form(round_key=round_key, user_id=BOB))
    assert finishes_while_a_writer_holds_the_lock(
        st, lambda: svc.check_answer(round_key=round_key, user_id=BOB, answers=["shipped"]))


def test_checking_a_new_partnership_name_does_not_wait_for_a_writer(st: Stack) -> None:
    assert finishes_while_a_writer_holds_the_lock(
        st, lambda: st.services.partnerships.check_name_free("Globex", creation_key="view:V1"))
