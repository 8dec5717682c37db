"""``python -m harness``: the same command as ``harness``."""

from .cli import main

if __name__ == "__main__":
    main()
