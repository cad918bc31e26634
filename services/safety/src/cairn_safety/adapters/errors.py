"""Errors adapters raise at start-up."""


class ClassifierUnavailableError(RuntimeError):
    """The configured toxicity classifier cannot be loaded (package or checkpoint missing)."""
