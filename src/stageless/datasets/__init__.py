"""Data sets that ship inside the package, addressed as ``dataset:NAME``."""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path

from stageless.errors import UserError

#: name -> file inside this package
BUNDLED = {
    # California housing (Pace and Barry, 1997; StatLib), as scikit-learn's
    # fetch_california_housing(as_frame=True).frame returns it: 20,640 rows,
    # 8 float features and the target MedHouseVal (in $100,000).
    "california-housing": "california_housing.csv.gz",
}

#: The California housing columns: the features in file order, then the target.
CALIFORNIA_HOUSING_FEATURES = [
    "MedInc",
    "HouseAge",
    "AveRooms",
    "AveBedrms",
    "Population",
    "AveOccup",
    "Latitude",
    "Longitude",
]
CALIFORNIA_HOUSING_TARGET = "MedHouseVal"


def dataset_path(name: str) -> Path:
    """Filesystem path of a bundled data set (the package is installed unzipped)."""
    if name not in BUNDLED:
        raise UserError(f"unknown data set {name!r}; bundled: {', '.join(sorted(BUNDLED))}")
    with as_file(files(__package__) / BUNDLED[name]) as path:
        return Path(path)
