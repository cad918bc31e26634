"""Errors of the feedback service that are the caller's to fix (they become a CLI message, not a trace)."""

from __future__ import annotations


class FeedbackError(Exception):
    """Base of the feedback service's expected errors."""


class InvalidRuleError(FeedbackError, ValueError):
    """A curation rule could not be read (e.g. `min_rating:9`)."""


class EmptySelectionError(FeedbackError):
    """The curation selected no rows; no dataset version is made from nothing."""


class DatasetNotFoundError(FeedbackError, LookupError):
    """The dataset (or the version asked for) does not exist."""
