"""`python -m tapewatch` runs the command line."""

from tapewatch.cli import run

run()
