"""The one exception type for problems the user can fix; the CLI prints it as one line and exits 2."""


class FacebenchError(Exception):
    """A problem with the user's input (file, option, environment), with the fix in its message.

    ``exit_code`` is 2 (bad input); a subclass for a result that failed its own check (an
    export that does not reproduce its model) sets 1.
    """

    exit_code = 2
