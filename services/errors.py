"""Errors the person who acted should read. Their message says what went wrong and what to do."""

from __future__ import annotations


class UserError(Exception):
    """A request that cannot be done as asked; `str(error)` is shown privately to the person."""


class NotFound(UserError):
    pass


class Forbidden(UserError):
    pass


class Invalid(UserError):
    """Bad input. `fields` maps an input name to its problem (used for modal field errors)."""

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or {}
