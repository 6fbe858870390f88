"""The one exception type for user mistakes; the CLI prints it as one line and exits 2."""


class FacebenchError(Exception):
    """A problem with the user's input (file, option, environment), with the fix in its message."""
