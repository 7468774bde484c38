"""The command line: the Typer app and every command's face; the packages below it know nothing of Typer."""
