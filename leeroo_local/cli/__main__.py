"""`python -m leeroo_local.cli`: the same entry point as the `leeroo-local` script."""

from . import main

main()
