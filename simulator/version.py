"""coldsim's version, as installed (recorded with every result)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("coldsim")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
