"""``nsqlookupd`` command (being built)."""
import sys


def main() -> None:
    sys.stderr.write("nsqlookupd: not built yet\n")
    sys.exit(1)
