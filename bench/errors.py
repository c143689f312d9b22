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
