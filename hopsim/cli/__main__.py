"""python -m hopsim.cli: the `hopsim` command."""

from hopsim.cli import main

main()
