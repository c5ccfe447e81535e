"""The one exception for input fedhar cannot use, whatever layer finds it.

An :class:`InputError` is the user's to fix, not a bug: a file that cannot be read or decoded, a
scenario value that fails validation, or one that the loaded data cannot satisfy. Its message is
one line per problem, each naming the file or the scenario key, what was expected and what was
found. The command line prints those lines and exits with code 2 (:func:`fedhar.cli.main`);
nothing else of the run is written.
"""

from __future__ import annotations


class InputError(ValueError):
    """Input fedhar cannot use; ``lines`` holds one line per problem (the message joins them).

    Args:
        lines: the problems, or one problem as a string; each names its file or key.
    """

    def __init__(self, lines: list[str] | str) -> None:
        self.lines = [lines] if isinstance(lines, str) else list(lines)
        super().__init__("\n".join(self.lines))


class ScenarioValueError(InputError):
    """A scenario value the loaded data cannot satisfy (a window longer than every recording, a
    class or user the data lacks, more folds than users); found only after loading.

    Args:
        key: the scenario key at fault, a dotted path such as ``data.window``.
        message: what was expected and what was found.
    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"{key}: {message}")

    def in_file(self, source: str) -> InputError:
        """The same problem, its line prefixed with the scenario file ``source``."""
        return InputError(f"{source}: {self}")
