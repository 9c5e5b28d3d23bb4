"""`python -m threefs` runs the `threefs` command line."""
from threefs.cli.main import main

main()
