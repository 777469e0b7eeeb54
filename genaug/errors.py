"""The errors genaug shows to users."""

from __future__ import annotations


class GenaugError(Exception):
    """A user-facing error whose message is one line naming the culprit.

    The CLI prints it as ``genaug: error: <message>`` and exits non-zero; library callers can catch it.
    """


class ArgumentError(GenaugError):
    """A bad value of a library function's argument. The message names the Python argument
    (``per_class must be at least 1``); the CLI names the flag instead (``--per-class must be ...``).

    Args:
        template: the message, with one ``{}`` for each argument it names.
        *arguments: the Python argument names, in the template's order.

    Example:
        >>> raise ArgumentError("give exactly one of {} and {}", "per_class", "num")
    """

    def __init__(self, template: str, *arguments: str):
        self.template, self.arguments = template, arguments
        super().__init__(template.format(*arguments))

    def __reduce__(self):  # so it crosses process boundaries (the demo's workers) intact
        return type(self), (self.template, *self.arguments)

    def naming(self, names: dict[str, str]) -> str:
        """The message with each argument replaced by ``names[argument]`` where given (e.g. a flag)."""
        return self.template.format(*(names.get(a, a) for a in self.arguments))
