"""``nsq_stat`` (being built)."""
import sys


def main() -> None:
    sys.stderr.write("nsq_stat: not built yet\n")
    sys.exit(1)
