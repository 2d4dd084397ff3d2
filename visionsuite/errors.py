"""The one exception type the CLI turns into a one-line message instead of a traceback."""


class VisionsuiteError(Exception):
    """A problem with the user's input: a file, a config key, a dataset.

    The message is shown as is, so it names the file and says what is wrong with it.
    """
