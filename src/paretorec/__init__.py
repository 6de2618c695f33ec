"""paretorec: multi-objective recommendation with pretrained language models."""

from ._validation import ChecksumError, DataFileError, ParetorecError, ParetorecWarning
from .data import Dataset

__version__ = "0.1.0"

__all__ = [
    "ChecksumError",
    "DataFileError",
    "Dataset",
    "ParetorecError",
    "ParetorecWarning",
    "__version__",
]
