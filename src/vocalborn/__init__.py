"""VocalBorn Tasks."""

__version__ = "0.1.0"
