"""The Typer command line. Thin: parse options, call the domain layer, print."""
