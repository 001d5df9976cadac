"""``python -m chunkd serve``: the standalone server's command line, as the binary's."""

import sys

from ._chunkd import run_cli


def main() -> None:
    sys.exit(run_cli(["chunkd", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
