"""The one error type genaug shows to users."""


class GenaugError(Exception):
    """A user-facing error whose message is one line naming the culprit.

    The CLI prints it as ``genaug: error: <message>`` and exits non-zero; library callers can catch it.
    """
