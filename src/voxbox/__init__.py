"""voxbox: self-hosted voice messaging."""

__version__ = "0.1.0"
