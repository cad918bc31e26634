"""Why a prompt could not be resolved or rendered; each message is what a caller reads on its response."""

from __future__ import annotations


class PromptStoreError(Exception):
    """A request the prompt store refuses; `str(error)` is a message for the caller."""


class InvalidReferenceError(PromptStoreError, ValueError):
    """A prompt reference that is not `name`, `name@label` or `name:version`."""


class ResolutionError(PromptStoreError, LookupError):
    """A reference that names no stored prompt, label or version."""


class PromptNotFoundError(ResolutionError):
    """No prompt of that name."""


class LabelNotFoundError(ResolutionError):
    """The prompt exists but has no such label."""


class VersionNotFoundError(ResolutionError):
    """The prompt exists but has no such version."""


class ExperimentNotFoundError(ResolutionError):
    """No experiment runs on that prompt."""


class RenderError(PromptStoreError, ValueError):
    """A resolved prompt that could not be rendered for the given input."""


class MissingVariableError(RenderError):
    """A required variable has no value."""


class InvalidVariableError(RenderError):
    """A variable's value does not fit its declaration."""


class TemplateRenderError(RenderError):
    """The template failed while rendering (undefined name, sandbox violation, runtime error, size)."""


class InvalidPromptError(PromptStoreError, ValueError):
    """A prompt spec (or experiment) that cannot be stored: bad structure or template."""
