"""Errors raised by the project store; each message names the project and what to do."""


class ProjectError(RuntimeError):
    """A project folder cannot be used as asked."""


class ProjectLockedError(ProjectError):
    """Another process has the project open for writing."""


class ReadOnlyProjectError(ProjectError):
    """A write was attempted on a project opened read-only."""
