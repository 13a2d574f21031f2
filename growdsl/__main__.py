"""`python -m growdsl` runs the command line."""

from growdsl.cli import main

main()
