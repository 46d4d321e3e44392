"""``nsq_to_http`` (being built)."""
import sys


def main() -> None:
    sys.stderr.write("nsq_to_http: not built yet\n")
    sys.exit(1)
