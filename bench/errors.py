"""Errors a user can cause. The CLI prints their message on one line and exits 2."""


class FacebenchError(Exception):
    """Base class of every error a user can cause (bad name, path, budget, checkpoint...)."""


class UnknownNameError(FacebenchError):
    """A model, attack, suite, protocol or goal name that no registry knows."""


class BadInputError(FacebenchError):
    """A parameter or file whose content is not acceptable."""


class StoreError(FacebenchError):
    """A results store that cannot be opened, read or written."""


class CheckpointError(FacebenchError):
    """A checkpoint or model card that is missing, corrupted or does not match its variant."""


class ModelFactoryError(FacebenchError):
    """A user's model factory (`module:function`) that cannot be imported or called, or returns no nn.Module."""


class ModelOutputError(FacebenchError):
    """A model whose outputs break the FR or FAS convention (shape, normalisation, differentiability)."""


class CellFailedError(FacebenchError):
    """Cells whose computation failed (after the executor's retries); the run's other cells are stored."""


class WorkerFailedError(FacebenchError):
    """A helper process of a parallel run (`facebench claims --jobs`) that failed; what the workers finished is kept."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT), or SIGTERM during a run: not a user's mistake, and a KeyboardInterrupt, so every path that
    handles Ctrl-C handles SIGTERM the same way. Its message, when it has one, is what the CLI prints (e.g. how to
    resume the run); the CLI exits with 128 + `signum` (130 for Ctrl-C, 143 for SIGTERM)."""

    def __init__(self, message: str = "", signum: int = 2) -> None:
        super().__init__(message)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum
