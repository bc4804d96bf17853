"""recipegen: PyPI packages as real conda packages, built from generated recipes."""

__version__ = "0.1.0"
