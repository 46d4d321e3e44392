"""nsqpy: NSQ rebuilt in Python as a drop-in replacement."""
import sys

NSQ_VERSION = "1.3.0"
"""The NSQ release whose wire protocol, HTTP API and formats we are compatible with."""

BUILD_INFO = "python%d.%d.%d" % sys.version_info[:3]


def version_string(app: str) -> str:
    """The Go-form version line clients parse, e.g. ``nsqd v1.3.0 (built w/python3.11.7)``."""
    return f"{app} v{NSQ_VERSION} (built w/{BUILD_INFO})"
