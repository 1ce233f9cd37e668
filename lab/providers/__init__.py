"""Providers create machines and publish only how to reach them."""
