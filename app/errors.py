"""Errors a user can cause. The CLI prints their message as one line and exits non-zero."""


class TailorError(Exception):
    """Base for user-facing errors: the message must name the file, line or key at fault."""

    exit_code = 1


class ConfigError(TailorError):
    pass


class ImportFileError(TailorError):
    pass


class StoreError(TailorError):
    pass
