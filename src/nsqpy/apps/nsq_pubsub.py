"""``nsq_pubsub`` (being built)."""
import sys


def main() -> None:
    sys.stderr.write("nsq_pubsub: not built yet\n")
    sys.exit(1)
