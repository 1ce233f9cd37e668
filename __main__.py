"""Pulumi entry point: the program lives in lab/pulumi_program.py (tests import it)."""
from lab.pulumi_program import main

main()
