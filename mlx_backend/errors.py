"""Errors a user can cause; each message is one line naming the file, path or repo.

Kept free of mlx imports so the job runner can catch them before mlx is loaded.
"""


class BadJobError(Exception):
    """The job file is unusable."""


class ModelLoadError(Exception):
    """A model, adapter or hub repo that cannot be used."""


def one_line(e: BaseException) -> str:
    """An exception as one line for an error event (messages may span lines)."""
    return " ".join(str(e).split()) or type(e).__name__
