"""The ``outcome`` command line (a Flask CLI group)."""
