"""The support check's rules as data: domains, measures, cutoffs and suggested steps.

INTERFACE (issue 19): implemented by the "support-core" helper. ``rules.yaml`` beside
this file; every cutoff and suggestion carries a ``source``.
"""
