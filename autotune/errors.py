"""Every error autotune raises on purpose derives from :class:`AutotuneError`.

The CLI prints ``str(error)`` as one line and exits non-zero, so messages must name what is
wrong and what is allowed, without a traceback.
"""


class AutotuneError(Exception):
    """Base class of all autotune errors."""


def one_line(error: BaseException | str, first_line_only: bool = False, limit: int = 0) -> str:
    """An error as one line of text: whitespace runs folded, or only its first line.

    ``first_line_only`` drops what a library appends below its message (SQL, a traceback);
    ``limit`` cuts the text to that many characters. An error with no text gives its type.
    """
    text = str(error).strip()
    if first_line_only and text:
        text = text.splitlines()[0]
    text = " ".join(text.split())
    if limit:
        text = text[:limit]
    if text or isinstance(error, str):
        return text
    return type(error).__name__


class SpecError(AutotuneError):
    """A study spec file is missing, unreadable or invalid."""


class DataError(AutotuneError):
    """A dataset cannot be found, read or used for classification."""


class TeacherError(AutotuneError):
    """A teacher checkpoint cannot be found or does not fit the dataset."""


class ConfigError(AutotuneError):
    """A compression configuration is out of range for this teacher or study."""


class CompressionError(AutotuneError):
    """A stage of the compression pipeline failed (distill, quantize, export, evaluate)."""


class StorageError(AutotuneError):
    """The result database cannot be reached, read or written.

    ``transient`` marks conditions that pass on their own (a server restart, a lock), which
    workers wait out with backoff.
    """

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class SchemaOutOfDateError(StorageError):
    """The database's autotune schema is older than this autotune; run ``autotune db upgrade``."""


class NotFoundError(AutotuneError):
    """Something asked for by name or number is not in the database (HTTP 404)."""


class StudyNotFoundError(NotFoundError):
    """No study of that name in the storage."""


class DatabaseNotFoundError(NotFoundError, StorageError):
    """A command that only reads was pointed at a database that does not exist or holds no
    autotune results (it is never created by reading)."""


class TrialNotFoundError(NotFoundError):
    """The study has no measured trial of that number."""


class HardwareNotFoundError(NotFoundError, StorageError):
    """The study has no results from the machine asked for, or none at all yet."""


class AmbiguousHardwareError(StorageError):
    """The study has results from several machines and none was chosen (HTTP 409)."""


class ArtifactError(StorageError):
    """A trial's model file is absent from the artifact store or does not match its hash."""


class ArtifactOutsideStoreError(ArtifactError):
    """A stored artifact id points outside the artifact store (HTTP 403)."""


class NoFeasibleConfigError(NotFoundError):
    """No finished trial meets the requested constraints."""


class LatencyConstraintError(AutotuneError):
    """A candidate is slower than the study's latency constraint; raised before training."""

    def __init__(self, latency_ms: float, max_latency_ms: float) -> None:
        super().__init__(
            f"latency {latency_ms:.2f} ms exceeds max_latency_ms={max_latency_ms:g}; "
            "stopped before training"
        )
        self.latency_ms = latency_ms
        self.max_latency_ms = max_latency_ms


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C during a study: the running trial (if any) is stored as failed and discarded;
    running the same command resumes the study."""

    def __init__(self, trial: int | None) -> None:
        super().__init__(trial)
        self.trial = trial
