"""Every problem a user can fix, in one hierarchy.

Each kind carries the exit code the CLI returns for it, and its message is one line that names the file or
setting and says what to do ("rebuild with: rag index PATH --rebuild"). Anything that is not a ``RagError``
is a bug and keeps its traceback. Problems with single files of a build are not raised: they travel as
``FileProblem`` records, so one bad file never stops the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

EXIT_OK = 0
EXIT_BAD_INPUT = 1  # some files or questions were refused; the rest were done
EXIT_INDEX = 2  # the index folder is missing, damaged, built differently, or its store cannot be reached
EXIT_MODEL = 3  # a model's weights are missing or cannot be prepared
EXIT_SETTINGS = 4  # a setting, flag or variable has a value the program cannot use
EXIT_INTERRUPTED = 130  # the shell's code for a job stopped by Ctrl-C


class RagError(Exception):
    """Base of every problem the user can fix; ``str()`` is the one-line message."""

    exit_code: ClassVar[int] = EXIT_BAD_INPUT


class BadInput(RagError):
    """A file, record or question file that cannot be used; the message names the problem."""


class BadQuestion(BadInput):
    """A question that cannot be answered as asked (empty, or too long)."""


class SettingsError(RagError, ValueError):
    """A configuration value (flag, ``RAG_*`` variable, calibration file) the program cannot use."""

    exit_code = EXIT_SETTINGS


class IndexProblem(RagError):
    """Problems with an index folder."""

    exit_code = EXIT_INDEX


class IndexMissing(IndexProblem):
    """No index has been built in the folder."""


class IndexCorrupt(IndexProblem):
    """The index's files are damaged or unreadable."""


class IndexMismatch(IndexProblem):
    """The index was built with other settings (embedding model, chunking, store) than asked for now."""


class IndexUnavailable(IndexProblem):
    """The engine holding the chunks (a Milvus server or Milvus Lite file) cannot be opened right now."""


class ModelProblem(RagError):
    """A model that cannot be found or prepared."""

    exit_code = EXIT_MODEL


class ModelNotFound(ModelProblem):
    """A language model's weights are not installed (or fail their checksum)."""


class ExportFailed(ModelProblem):
    """The ONNX export of the packaged embedding model could not be written or loaded."""


@dataclass(frozen=True)
class FileProblem:
    """One file a build could not index, and why; the build goes on with the others."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"
