"""The package's version, in one place: scikit-build-core reads it from here for the metadata."""

__version__ = "0.1.0"
