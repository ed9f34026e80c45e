"""Thin Bolt listeners, one module per feature; `register_all` wires them onto an App."""

from __future__ import annotations

from slack_bolt import App

from handlers import checkins, commands, issues, milestones, partnerships, polls, pulse
from services.container import Services


def register_all(app: App, services: Services) -> commands.CommandRouter:
    router = commands.CommandRouter()
    commands.register(app, services, router)
    partnerships.register(app, services, router)
    checkins.register(app, services, router)
    pulse.register(app, services, router)
    milestones.register(app, services, router)
    polls.register(app, services, router)
    issues.register(app, services, router)
    return router
