"""``nsq_tail`` (being built)."""
import sys


def main() -> None:
    sys.stderr.write("nsq_tail: not built yet\n")
    sys.exit(1)
