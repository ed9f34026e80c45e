"""CI-only: the fake Slack requires at least what Slack's published method docs require, and every
method the app calls is one the fake models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.slack import METHOD_SCOPES
from tests.fakes.slack import REQUIRED

METHODS = Path(__file__).resolve().parents[2].parent / "shared" / "slack-api" / "docs-slack-dev" / "methods"


def test_the_fake_models_every_method_the_app_calls() -> None:
    assert set(METHOD_SCOPES) <= set(REQUIRED)


@pytest.mark.skipif(not METHODS.is_dir(), reason="../shared/slack-api is not beside the project")
@pytest.mark.parametrize("method", sorted(REQUIRED))
def test_the_fake_requires_what_slack_requires(method: str) -> None:
    doc = json.loads((METHODS / f"{method}.json").read_text())
    required_by_slack = set(doc.get("args", {}).get("required") or []) - {"token"}
    covered = {name for need in REQUIRED[method] for name in (need if isinstance(need, tuple) else (need,))}
    assert required_by_slack <= covered, f"{method}: Slack requires {required_by_slack - covered}"
