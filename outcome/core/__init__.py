"""The pure core: instruments, scoring, change and signals.

Arrays or frozen dataclasses in, frozen dataclasses out; stdlib and numpy only. No
Flask, no SQLAlchemy, no I/O and no clock (``now`` is a parameter), so one code path
serves a form submission, a dashboard and a batch of a million rows. A test imports
every module here in a fresh interpreter and checks that no framework came along.
"""
