"""The one exception type the CLI turns into a one-line message instead of a traceback."""


def first_line(text: str, limit: int = 300) -> str:
    """The first line of an error text: TensorFlow's messages run to pages."""
    text = str(text).strip()
    return text.splitlines()[0][:limit] if text else ""


class VisionsuiteError(Exception):
    """A problem with the user's input: a file, a config key, a dataset.

    The message is shown as is, so it names the file and says what is wrong with it.
    """
