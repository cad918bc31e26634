"""Errors of the registry and of evaluation runs that a caller can act on."""

from __future__ import annotations


class EvaluatorError(Exception):
    """A request the registry or the evaluator refuses, with a message for the caller."""


class VersionNotFoundError(EvaluatorError, LookupError):
    """The model has no such version."""


class RunNotFoundError(EvaluatorError, LookupError):
    """No evaluation run has this id."""


class NoRollbackTargetError(EvaluatorError):
    """The model has no earlier production version to roll back to."""


class SuiteError(EvaluatorError, ValueError):
    """A suite file is invalid."""


class ShadowNotFoundError(EvaluatorError, LookupError):
    """No shadow has this id."""


class ShadowConflictError(EvaluatorError):
    """A shadow with this id mirrors to another candidate."""
