"""The therapist's scheduled reports (issue 18): the pre-session brief of each working
day and the weekly caseload report, built from the database as plain data
(:mod:`reports.brief`, :mod:`reports.weekly`), produced exactly once per therapist and
period on the report-run table, archived, and announced by an e-mail without clinical
content."""
