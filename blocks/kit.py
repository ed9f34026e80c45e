"""Generic Block Kit pieces every feature builds with. Texts are cut to Slack's limits here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from blocks.text import escape_within, truncate

Block = dict[str, Any]

SECTION_MAX = 3000
MESSAGE_BLOCKS_MAX = 50
VIEW_BLOCKS_MAX = 100


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, SECTION_MAX)}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, SECTION_MAX)}]}


def header(text: str) -> Block:
    """A header; its text may hold user text, so it is escaped like mrkdwn (defence in depth: plain text
    does not notify, but nothing shaped like a mention should reach Slack from user input)."""
    return {"type": "header", "text": plain(escape_within(text, 150))}


def divider() -> Block:
    return {"type": "divider"}


def button(text: str, action_id: str, value: str, *, style: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "button", "action_id": action_id, "text": plain(text), "value": value}
    if style:
        element["style"] = style
    return element


def actions(*elements: dict[str, Any], block_id: str | None = None) -> Block:
    block: Block = {"type": "actions", "elements": list(elements)}
    if block_id:
        block["block_id"] = block_id
    return block


def input_block(
    block_id: str, label: str, element: dict[str, Any], *, optional: bool = False, hint: str = ""
) -> Block:
    """An input whose block id and action id are both `block_id` (one name per field)."""
    block: Block = {
        "type": "input",
        "block_id": block_id,
        "label": plain(label),
        "element": {**element, "action_id": block_id},
        "optional": optional,
    }
    if hint:
        block["hint"] = plain(hint)
    return block


def option(text: str, value: str) -> dict[str, Any]:
    return {"text": plain(truncate(text, 75)), "value": value}


def chunked_sections(title: str, lines: Iterable[str], *, limit: int = SECTION_MAX - 100) -> list[Block]:
    """`title` then the lines, split into sections that stay within Slack's text limit."""
    blocks: list[Block] = []
    chunk: list[str] = [title] if title else []
    for line in lines:
        line = truncate(line, limit)
        if chunk and sum(len(x) + 1 for x in chunk) + len(line) > limit:
            blocks.append(section("\n".join(chunk)))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(section("\n".join(chunk)))
    return blocks


def cap_blocks(blocks: list[Block], limit: int = MESSAGE_BLOCKS_MAX, note: str = "…and more") -> list[Block]:
    """Keep within `limit` blocks, replacing the tail with a short note."""
    if len(blocks) <= limit:
        return blocks
    return [*blocks[: limit - 1], context(note)]
