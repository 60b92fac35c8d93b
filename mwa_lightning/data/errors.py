"""The data's one error type, and the messages more than one reader raises."""

from __future__ import annotations


class DataError(RuntimeError):
    """Data on disk is missing, incomplete or corrupt; the message names the path and the way out."""


def unreadable_image(name: object, error: BaseException) -> DataError:
    """The error for an image file that cannot be decoded, naming it and the decoder's complaint."""
    return DataError(f"{name} is truncated or not a readable image ({type(error).__name__}: {error})")
