"""The supervisor's weekly de-identified digest, as use cases (flush, never commit, except
:func:`~outcome.services.digests.production.run_due_digests`, see below).

- :mod:`.figures`: the week's de-identified figures, read from the database into the
  plain :class:`reports.digest.Digest` (client codes only);
- :mod:`.production`: which digests are due, and producing each exactly once (a claimed
  report run, :mod:`outcome.services.report_runs`, retried when it fails), built and
  rendered while only reading, archived in a short write;
- :mod:`.archive`: archiving a rendered digest and queuing its e-mail, and the
  supervisor's archive of them.

The PDF is drawn by :mod:`reports.digest_pdf` (plain data in, bytes out). The edges stay
thin: ``outcome digest`` (:mod:`outcome.cli.digest`) and the scheduler's
``send_digests`` job call :func:`~outcome.services.digests.production.run_due_digests`;
the supervisor's pages (:mod:`outcome.web.supervision`) list the archive and serve an
archived PDF.
"""
