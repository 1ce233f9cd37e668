"""Invoke task modules; ``tasks.py`` at the top only assembles them."""
