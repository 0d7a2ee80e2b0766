"""The one exception the data phase raises for bad input: what is wrong and where."""


class DataError(ValueError):
    """Bad training or evaluation data. The message names the file and the place (line, column,
    row or field) and says what to do, so it can be shown to the user as it is."""
