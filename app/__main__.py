"""Entry point for `python -m app` and the frozen binary."""

import multiprocessing

from app.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # must run before click parses arguments
    main()
