"""Loaders for the real FR and FAS datasets, each reading its dataset's official layout.

`DATASETS` maps a dataset name to its loader class; a loader is built with the dataset's root
folder and checks that folder up front. FAS videos are read in the facebench frame layout that
`facebench datasets prepare` writes (see `docs/real-datasets.md`). Where a dataset lives:
`bench.data.real.locate`. insightface's verification `.bin` files are single files, not dataset
folders: `read_bin` (`bench.data.real.insightface_bin`).
"""
from bench.data.real.registry import DATASETS, open_dataset, register_dataset

# Importing the modules registers the loaders.
from bench.data.real import casia, celeba, celeba_spoof, lfw, msu, oulu, replay  # noqa: F401
from bench.data.real.insightface_bin import InsightFaceBin, bin_folds, read_bin  # noqa: F401
from bench.data.real.common import (  # noqa: F401
    DatasetError,
    FrameRecord,
    ImageRecord,
    PairRecord,
    VideoRecord,
    list_frames,
    read_image,
)

__all__ = ["DATASETS", "DatasetError", "FrameRecord", "ImageRecord", "InsightFaceBin", "PairRecord", "VideoRecord",
           "bin_folds", "list_frames", "open_dataset", "read_bin", "read_image", "register_dataset"]
