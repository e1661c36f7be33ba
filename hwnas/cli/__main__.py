"""`python -m hwnas.cli` runs the command line (e.g. from a separate IPEX environment)."""

from hwnas.cli import entry

entry()
