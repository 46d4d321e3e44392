"""``nsq_to_file`` (being built)."""
import sys


def main() -> None:
    sys.stderr.write("nsq_to_file: not built yet\n")
    sys.exit(1)
