import re

import pytest

from services.partnerships import channel_name_candidates, slugify

SLACK_NAME = re.compile(r"^[a-z0-9_-]{1,80}$")


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Acme Logistics", "acme-logistics"),
        ("<!channel> *Acme*", "channel-acme"),
        ("Müller & Söhne GmbH", "muller-sohne-gmbh"),
        ("   ", "partnership"),
        ("日本", "partnership"),
        ("a__b--c", "a__b-c"),
    ],
)
def test_slug_follows_slack_channel_rules(name: str, slug: str) -> None:
    assert slugify(name) == slug


def test_candidates_stay_within_80_characters_and_count_up() -> None:
    names = channel_name_candidates("x" * 200)
    assert names[0] == "partner-" + "x" * 72
    assert names[1].endswith("-2") and names[9].endswith("-10")
    assert all(SLACK_NAME.match(n) and len(n) <= 80 for n in names)
    assert len(set(names)) == len(names)
