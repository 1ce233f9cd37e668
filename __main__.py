"""Pulumi entry point: the program lives in lab/providers/pulumi_program.py (tests import it)."""
from lab.providers.pulumi_program import main

main()
