"""Test doubles that behave like Slack: a stateful Web API over loopback HTTP and a request signer."""

from tests.fakes.sender import SlackSender
from tests.fakes.slack import Channel, FakeSlack

__all__ = ["Channel", "FakeSlack", "SlackSender"]
