"""Measurement-based-care fidelity per therapist (issue 19; support.md, "The loop", 7).

Never ranked; small numbers labelled. Completion, median time to acknowledge a critical
answer, red cases with a plan within 7 days, plans reviewed, red cases back on track
within 4 sessions of a plan, and the dropout categories of ended episodes (planned,
mutual, unilateral: the ICCE indices).

INTERFACE (issue 19): implemented by the "supervision" helper.
"""
