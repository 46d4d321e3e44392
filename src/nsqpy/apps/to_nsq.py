"""``to_nsq`` (being built)."""
import sys


def main() -> None:
    sys.stderr.write("to_nsq: not built yet\n")
    sys.exit(1)
