"""Check Block Kit against Slack's limits with slack_sdk's models, plus the limits they do not check."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

MESSAGE_BLOCKS_MAX = 50
VIEW_BLOCKS_MAX = 100


def _texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["text"]] if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str) else []
        for value in node.values():
            found += _texts(value)
        return found
    if isinstance(node, list):
        return [t for item in node for t in _texts(item)]
    return []


def assert_valid_message_blocks(blocks: list[dict[str, Any]]) -> None:
    assert 1 <= len(blocks) <= MESSAGE_BLOCKS_MAX
    for block in Block.parse_all(blocks):
        block.to_dict()  # raises SlackObjectFormationError past a limit
    assert all(len(t) <= 3000 for t in _texts(blocks))


def assert_valid_view(view: dict[str, Any]) -> None:
    assert len(view["blocks"]) <= VIEW_BLOCKS_MAX
    View(**view).to_dict()
    assert all(len(t) <= 3000 for t in _texts(view["blocks"]))


def mrkdwn_texts(blocks: Any) -> str:
    return "\n".join(_texts(blocks))
