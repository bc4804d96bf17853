"""One error type for everything a user can act on."""

from __future__ import annotations


class RecipegenError(Exception):
    """An error with a message for the user and, where there is one, what to do about it.

    The CLI prints ``message`` and ``hint`` and exits with ``exit_code``; nothing else
    turns into a traceback for the user.
    """

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, *, package: str | None = None,
                 log: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.package = package
        self.log = log

    def __str__(self) -> str:
        parts = [self.message]
        if self.log:
            parts.append(f"log: {self.log}")
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)


class UsageError(RecipegenError):
    """Bad input from the user: a malformed spec, a bad path, a bad flag combination."""

    exit_code = 2
