"""``nsqadmin`` command (being built)."""
import sys


def main() -> None:
    sys.stderr.write("nsqadmin: not built yet\n")
    sys.exit(1)
