"""Benchmark: the cost of encryption at rest (issue 20) on the form, caseload and digest benches.

Runs ``bench.forms`` (client submissions through gunicorn), ``bench.dashboard`` (the
therapist's caseload page, small database only) and ``bench.digest`` (every supervisor's
weekly digest) twice each in one run, alternating: encryption off (no key, plaintext), then
on (a fresh key in ``OUTCOME_ENCRYPTION_KEYS``, inherited by the servers the benches start,
and installed in this process so that the data the benches build is stored encrypted:
names, answers, notes). Each bench builds its own fresh database in each mode.

Prints the figures of each mode and their ratios (on / off): for throughputs below 1 means
slower with encryption, for times above 1 does. ``--quick`` runs smaller shapes (minutes
rather than a quarter of an hour); docs/reliability.md quotes a run. Run:
``.venv/bin/python -m bench.encryption [--quick] [--json]``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import sys

from outcome import encryption

# (bench, its arguments (full, quick), the figures compared: (label, path, higher is better))
BENCHES = (
    # 28 clients: the links are opened from one address, limited to 30 a minute.
    ("forms", (["--clients", "28"], ["--clients", "28", "--trivial-seconds", "2"]),
     (("submissions/s", ("submissions_per_s",), True),
      ("POST p50 ms", ("post_p50_ms",), False))),
    ("dashboard", (["--large", "0", "--seconds", "10"],
                   ["--large", "0", "--seconds", "4", "--rounds", "1"]),
     (("caseload page requests/s", ("small", "dashboard_rps"), True),
      ("caseload page p99 ms", ("small", "dashboard_p99_ms"), False))),
    # The full shape in quick mode too: a smaller clinic may have no acknowledged critical
    # answer among the digests' items, which bench.digest treats as a failure.
    ("digest", ([], ["--bare-pages", "50"]),
     (("all digests s", ("total_s",), False),
      ("data (non-render) s", ("other_s",), False))),
)


def run_bench(name: str, args: list[str], keys: str) -> dict:
    """Run ``bench.<name>`` in this process with ``--json`` under ``keys`` ('' = off)."""
    if keys:
        os.environ["OUTCOME_ENCRYPTION_KEYS"] = keys
    else:
        os.environ.pop("OUTCOME_ENCRYPTION_KEYS", None)
    encryption.install(encryption.key_ring_from_config({"ENCRYPTION_KEYS": keys}))
    module = importlib.import_module(f"bench.{name}")
    out = io.StringIO()
    saved = sys.argv
    sys.argv = [f"bench.{name}", *args, "--json"]
    try:
        with contextlib.redirect_stdout(out):
            module.main()
    finally:
        sys.argv = saved
    lines = [line for line in out.getvalue().splitlines() if line.startswith("{")]
    return json.loads(lines[-1])


def pick(figures: dict, path: tuple[str, ...]) -> float:
    value: object = figures
    for part in path:
        value = value[part]  # type: ignore[index]
    return float(value)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller shapes")
    parser.add_argument("--only", choices=[b[0] for b in BENCHES], action="append")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    keys = encryption.new_key_line("bench")
    results = {}
    for name, arguments, compared in BENCHES:
        if args.only and name not in args.only:
            continue
        chosen = arguments[1] if args.quick else arguments[0]
        off = run_bench(name, chosen, "")
        on = run_bench(name, chosen, keys)
        rows = []
        for label, path, _higher in compared:
            a, b = pick(off, path), pick(on, path)
            rows.append({"figure": label, "off": a, "on": b,
                         "ratio_on_off": round(b / a, 3) if a else None})
        results[name] = rows
        if not args.json:
            for row in rows:
                print(f"{name:10} {row['figure']:28} off {row['off']:>9} on {row['on']:>9} "
                      f"ratio {row['ratio_on_off']}", flush=True)
    encryption.install(encryption.KeyRing())
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
