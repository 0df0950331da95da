"""Backups of the database, restores, and the manifest that proves a restore complete.

:mod:`outcome.ops.backup` holds the entry points (``backup``, ``check_restore``,
``restore``) and picks the backend; :mod:`outcome.ops.sqlite` and
:mod:`outcome.ops.postgresql` copy the data out and back; :mod:`outcome.ops.manifest`
computes and checks the figures (row counts, table hashes) a restore is verified against.
No Flask here: the CLI (``outcome backup``, ``outcome restore``) and tests call these
functions with an engine and paths.
"""
