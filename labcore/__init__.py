"""The foundation both ``lab`` and ``provision`` stand on; it imports neither.

``poll``: every bounded wait and the one timeout multiplier.
"""
