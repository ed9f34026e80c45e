"""The HTTP edge under abuse: a seeded fuzz of malformed, truncated, oversized, wrongly encoded and wrongly
typed requests, signed and unsigned, against the real endpoint; and what reaches the log.

One app and one fake Slack serve the whole module."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from adapters.inbound import MAX_BODY_BYTES
from blocks import ids
from tests.e2e.conftest import ALICE, SECRET, Harness, new_fake, start_harness
from tests.fakes import SlackSender

FORM, JSON = "application/x-www-form-urlencoded", "application/json"
MARKER = "fuzz-marker-7f3a"  # in every fuzzed body's text: it must never show up in the log


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    fake = new_fake()
    harness = start_harness(fake, tmp_path_factory.mktemp("edge"))
    yield harness
    harness.close()
    fake.stop()


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)  # production's lowest level for slack_bolt and slack_sdk
    return caplog


# -- sending ------------------------------------------------------------------------------------------------------
def sign(body: bytes, timestamp: str, secret: str = SECRET) -> str:
    """Slack's v0 signature over the raw bytes (whatever their encoding)."""
    return "v0=" + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()


def signed(body: bytes, content_type: str, *, timestamp: str | None = None) -> dict[str, str]:
    ts = timestamp or str(int(time.time()))
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign(body, ts)}


def post(h: Harness, body: bytes, headers: dict[str, str], *, declared_length: int | None = None) -> int:
    """POST raw bytes; with `declared_length`, announce that many bytes but send only `body` (as a client
    pushing an oversized body would, until the server answers)."""
    url = urlsplit(h.sender.app_url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        conn.putrequest("POST", url.path)
        for name, value in {**headers, "Content-Length": str(declared_length or len(body))}.items():
            conn.putheader(name, value.encode("utf-8"))
        conn.endheaders(body)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


class _Recorder(SlackSender):
    """SlackSender's payload builders, recording the body instead of sending it."""

    recorded: tuple[bytes, str]

    def raw(self, body: bytes, content_type: str, **_: Any) -> tuple[int, Any]:
        self.recorded = (body, content_type)
        return 0, None


def base_requests(h: Harness) -> list[tuple[str, Any, str]]:
    """Well-formed requests the app answers cheaply: (name, payload, how Slack encodes it: command | payload
    | json). Each carries MARKER where a person's text would be."""
    rec = _Recorder(app_url=h.sender.app_url, signing_secret=SECRET, fake=h.fake, team_id=h.sender.team_id)

    def record(send: Any) -> tuple[bytes, str]:
        send()
        return rec.recorded

    def interactive(send: Any) -> Any:
        return json.loads(dict(parse_qsl(record(send)[0].decode()))["payload"])

    answer_view = {"id": "VANSWER", "type": "modal", "callback_id": ids.CHECKIN_ANSWER_VIEW, "team_id": "T0OURS",
                   "private_metadata": json.dumps({"round": "no-such-round"}), "blocks": []}
    new_view = {"id": "VNEW", "type": "modal", "callback_id": ids.NEW_PARTNERSHIP_VIEW, "team_id": "T0OURS",
                "private_metadata": "", "blocks": []}
    closed = interactive(lambda: rec.submit_view(new_view, {}, user_id=ALICE)) | {"type": "view_closed"}
    return [
        ("command", dict(parse_qsl(record(lambda: rec.command(
            "/partner", f"help {MARKER}", user_id=ALICE, channel_id=h.general))[0].decode())), "command"),
        ("cancel button", interactive(lambda: rec.block_action(
            ids.CLOSE_CANCEL, MARKER, user_id=ALICE, channel_id=h.general)), "payload"),
        ("answer button", interactive(lambda: rec.block_action(
            ids.CHECKIN_ANSWER, f"no-such-round {MARKER}", user_id=ALICE, channel_id=h.general)), "payload"),
        ("home button", interactive(lambda: rec.block_action(
            ids.NEW_PARTNERSHIP_BUTTON, "new", user_id=ALICE, view={"id": "VHOME", "type": "home"})), "payload"),
        ("answer submitted", interactive(lambda: rec.submit_view(
            answer_view, {"answer_0": {"answer_0": {"type": "plain_text_input", "value": MARKER}}},
            user_id=ALICE)), "payload"),
        ("new partnership submitted", interactive(lambda: rec.submit_view(
            new_view, {ids.F_NAME: {ids.F_NAME: {"type": "plain_text_input", "value": ""}},
                       ids.F_GOALS: {ids.F_GOALS: {"type": "plain_text_input", "value": MARKER}}},
            user_id=ALICE)), "payload"),
        ("view closed", closed, "payload"),
        ("home opened", json.loads(record(lambda: rec.event(
            {"type": "app_home_opened", "user": ALICE, "channel": "D0ALICE", "tab": "home"}))[0]), "json"),
        ("url verification", {"token": "t", "challenge": MARKER, "type": "url_verification"}, "json"),
    ]


def encode(payload: Any, how: str) -> tuple[bytes, str]:
    if how == "command":
        return urlencode(payload).encode(), FORM
    if how == "payload":
        return urlencode({"payload": json.dumps(payload)}).encode(), FORM
    return json.dumps(payload).encode(), JSON


# -- the fuzz -----------------------------------------------------------------------------------------------------
@dataclass
class Case:
    kind: str
    body: bytes
    headers: dict[str, str]
    expect: set[int]  # the statuses that are right for it
    declared_length: int | None = None
    got: int = field(default=0)


ANY_BUT_401 = {200, 400, 404}
WRONG_VALUES: list[Any] = [None, 0, -1, 2.5, True, [], {}, ["x"], [{}], {"id": 0}, "x"]
BAD_UTF8 = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xe9", b"\x80", b"\xf8\x88\x80\x80\x80"]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path in a JSON value (list items by index)."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield (*prefix, key)
        yield from paths(item, (*prefix, key))


# Fields Bolt or the listeners read somewhere (`body["user"]["id"]`, `body.get("event", {}).get(...)`, ...).
READ_KEYS = ["user", "team", "channel", "enterprise", "event", "message", "item", "authorizations", "view",
             "actions", "response_url", "response_urls", "state", "values", "type", "id", "function"]


def mutate(payload: Any, rng: random.Random) -> Any:
    """One change anywhere in the payload: delete a field, set a field Bolt or a listener reads to a value of
    any type, or give a field a value of another JSON type (or "" for a string)."""
    payload = json.loads(json.dumps(payload))
    path = rng.choice(list(paths(payload)))
    parent = payload
    for key in path[:-1]:
        parent = parent[key]
    old, roll = parent[path[-1]], rng.random()
    if roll < 0.2 and isinstance(parent, dict):
        del parent[path[-1]]
    elif roll < 0.4 and isinstance(parent, dict):
        parent[rng.choice(READ_KEYS)] = rng.choice([v for v in WRONG_VALUES if v != "x"])
    else:
        choices = [v for v in WRONG_VALUES if type(v) is not type(old)] + ([""] if isinstance(old, str) else [])
        parent[path[-1]] = rng.choice(choices)
    return payload


def fuzz_cases(h: Harness, rng: random.Random) -> list[Case]:
    bases = base_requests(h)
    encoded = [encode(payload, how) for _, payload, how in bases]
    now = int(time.time())
    cases: list[Case] = []

    def add(kind: str, body: bytes, headers: dict[str, str], expect: set[int], **kw: Any) -> None:
        cases.append(Case(kind, body, headers, expect, **kw))

    for _ in range(40):  # bad signatures and missing or garbled headers
        body, ctype = rng.choice(encoded)
        headers = signed(body, ctype)
        broken = rng.choice([
            {"X-Slack-Signature": "v0=" + "".join(rng.choices("0123456789abcdef", k=64))},
            {"X-Slack-Signature": sign(body, headers["X-Slack-Request-Timestamp"], secret="not-the-secret")},
            {"X-Slack-Signature": sign(body + b"&x=1", headers["X-Slack-Request-Timestamp"])},
            {"X-Slack-Signature": ""}, {"X-Slack-Signature": "v0=é"}, {"X-Slack-Signature": None},
            {"X-Slack-Request-Timestamp": None}, {"X-Slack-Request-Timestamp": rng.choice(["abc", "12.5", "-5", ""])},
            # digits only, but too long for a float or for int() itself
            {"X-Slack-Request-Timestamp": "9" * rng.choice([13, 400, 5000])},
            {"X-Slack-Request-Timestamp": "0" * 400 + str(now)},
        ])
        headers = {k: v for k, v in {**headers, **broken}.items() if v is not None}
        add("bad signature", body, headers, {401})
    for _ in range(20):  # well signed, but too old or too far ahead
        body, ctype = rng.choice(encoded)
        skew = rng.choice([-1, 1]) * rng.randint(301, 10**6)
        add("stale signature", body, signed(body, ctype, timestamp=str(now + skew)), {401})
    for _ in range(10):  # more than 1 MiB announced, signed or not
        body, ctype = rng.choice(encoded)
        headers = signed(body, ctype) if rng.random() < 0.5 else {"Content-Type": ctype}
        add("oversized", body, headers, {413}, declared_length=rng.randint(MAX_BODY_BYTES + 1, 50 * MAX_BODY_BYTES))
    for _ in range(30):  # signed, not UTF-8
        body, ctype = rng.choice(encoded)
        if rng.random() < 0.2:
            body = body.decode().encode("utf-16")
        else:
            at = rng.randint(0, len(body))
            body = body[:at] + rng.choice(BAD_UTF8) + body[at:]
        add("not UTF-8", body, signed(body, ctype), {400})
    for _ in range(40):  # signed, cut short: a form may still hold every field it needs
        body, ctype = rng.choice(encoded)
        body = body[: rng.randint(0, len(body) - 1)]
        add("truncated", body, signed(body, ctype), ANY_BUT_401)
    for _ in range(30):  # signed, not a Slack request at all
        body = rng.choice([
            bytes(rng.randrange(256) for _ in range(rng.randint(0, 2000))),
            "".join(rng.choices("abc=&%{}[]\":,0123456789 ", k=rng.randint(1, 300))).encode(),
            json.dumps(rng.choice([[1, 2], "text", 42, None, True, [{"type": "block_actions"}]])).encode(),
            b"payload=" + rng.choice([b"", b"null", b"%5B1%5D", b"%22text%22", b"not+json", b"%7B%22type%22%3A1%7D"]),
            b"[" * 100_000 + b"]" * 100_000,
            b'{"type": "url_verification", "challenge": "\\ud800"}',
            b'{"type": "url_verification", "challenge": ' + b"1" * 5000 + b"}",
            b'{"type": "event_callback", "event": {"type": "x", "n": ' + b"[" * 70 + b"]" * 70 + b"}}",
            json.dumps({"type": rng.choice(["interactive_message", "dialog_submission", "workflow_step_edit",
                                            "", 7]), "callback_id": "x", "user": {"id": ALICE}}).encode(),
            b"a=b&c=d", b"ssl_check=0", b"command=%2Fpartner",
        ])
        ctype = rng.choice([FORM, JSON, "text/plain", "", "application/json; charset=utf-8", "multipart/form-data"])
        add("not a Slack request", body, signed(body, ctype), {400})
    for _ in range(120):  # signed, one field missing or of the wrong type
        name, payload, how = rng.choice(bases)
        body, ctype = encode(mutate(payload, rng), how)
        add(f"mutated {name}", body, signed(body, ctype), ANY_BUT_401)
    for _ in range(10):  # signed, labelled with the other content type
        body, ctype = rng.choice(encoded)
        other = JSON if ctype == FORM else FORM
        add("wrong content type", body, signed(body, other), ANY_BUT_401)
    rng.shuffle(cases)
    return cases


def test_fuzzed_requests_get_4xx_answers_never_a_server_error_or_a_traceback(
    edge: Harness, log: pytest.LogCaptureFixture,
) -> None:
    started = time.monotonic()
    cases = fuzz_cases(edge, random.Random(20260309))
    for case in cases:
        case.got = post(edge, case.body, case.headers, declared_length=case.declared_length)
    edge.wait()

    wrong = [f"{c.kind}: {c.got} (expected {sorted(c.expect)}) for {c.body[:120]!r}" for c in cases
             if c.got not in c.expect]
    assert not wrong, "\n".join(wrong)
    statuses = Counter(c.got for c in cases)
    assert len(cases) >= 300 and {400, 401, 413} <= set(statuses), statuses
    # Wrongly typed fields are refused at the edge, not left to blow up in a listener (the others are
    # fields nobody reads, or a deletion of something optional).
    assert Counter(c.got for c in cases if c.kind.startswith("mutated"))[400] >= 40, statuses
    assert "Traceback" not in log.text
    assert [r.getMessage() for r in log.records if r.levelno >= logging.ERROR] == []
    assert MARKER not in log.text and "/response/" not in log.text
    assert time.monotonic() - started < 20, "the fuzz should take seconds"

    said = edge.command("help")  # and the app still serves people
    assert said.status == 200 and "`/partner new [name]`" in said.text


@pytest.mark.parametrize(("name", "payload", "how", "field"), [
    ("a button click whose user is a string",
     {"type": "block_actions", "user": ALICE, "actions": [{"action_id": ids.CLOSE_CANCEL}], "trigger_id": "1.2"},
     "payload", "user"),
    ("a view submission without its view", {"type": "view_submission", "user": {"id": ALICE}}, "payload", "view"),
    ("a slash command without user_id",
     {"command": "/partner", "text": "help", "channel_id": "C1", "team_id": "T0OURS", "trigger_id": "1.2",
      "response_url": "https://hooks.slack.com/commands/T0OURS/1/x"}, "command", "user_id"),
    ("a home tab event without its user",
     {"type": "event_callback", "team_id": "T0OURS", "event": {"type": "app_home_opened", "tab": "home"}},
     "json", "user"),
])
def test_a_signed_request_of_the_wrong_shape_gets_400_naming_the_field(
    edge: Harness, log: pytest.LogCaptureFixture, name: str, payload: dict[str, Any], how: str, field: str,
) -> None:
    body, ctype = encode(payload, how)
    status, answer = edge.sender.raw(body, ctype)
    edge.wait()
    assert status == 400, name
    assert f"`{field}`" in answer["error"]
    assert "Traceback" not in log.text


def test_a_body_over_1_mib_gets_413_and_one_of_exactly_1_mib_is_served(edge: Harness) -> None:
    event = {"type": "event_callback", "team_id": "T0OURS", "event": {"type": "app_mention", "text": ""}}
    room = MAX_BODY_BYTES - len(json.dumps(event).encode())
    event["event"]["text"] = "x" * room
    body = json.dumps(event).encode()
    assert len(body) == MAX_BODY_BYTES
    assert post(edge, body, signed(body, JSON)) == 404  # taken, and no listener for app_mention
    bigger = body + b" "
    assert post(edge, bigger[:1000], signed(bigger, JSON), declared_length=len(bigger)) == 413


def test_a_refused_request_leaves_nothing_of_its_body_in_the_log(edge: Harness, log: pytest.LogCaptureFixture) -> None:
    response_url = "https://hooks.slack.com/commands/T0OURS/1234/Zq9sEcReT"
    token = "xoxb-1234-5678-SeCrEtToKeN"
    body = urlencode({"command": "/partner", "text": f"new Sneaky {token}", "user_id": ALICE,
                      "channel_id": edge.general, "team_id": "T0OURS", "trigger_id": "1.2",
                      "response_url": response_url}).encode()
    ts = str(int(time.time()))
    assert post(edge, body, {"Content-Type": FORM, "X-Slack-Request-Timestamp": ts,
                             "X-Slack-Signature": "v0=" + "0" * 64}) == 401
    assert post(edge, body, signed(body, FORM, timestamp=str(int(ts) - 301))) == 401
    edge.wait()
    for secret in (response_url, "Zq9sEcReT", token, "SeCrEtToKeN", "Sneaky"):
        assert secret not in log.text
    assert log.text.count("refused a request") == 2  # what was logged instead
    assert edge.fake.channel_by_name("partner-sneaky") is None
