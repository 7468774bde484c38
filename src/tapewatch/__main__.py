"""`python -m tapewatch` runs the command line."""

from tapewatch.cli.app import run

run()
