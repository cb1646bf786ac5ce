"""``python -m hpo`` runs the command line."""

from hpo.cli import main

main()
