"""`python -m coldsim`: the command line."""

from .cli.main import main

main()
