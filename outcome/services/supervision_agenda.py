"""The supervisor's agenda and their reviews (issue 19; support.md, "The loop", 6).

By client code only: not-on-track and unrepaired-rupture cases without an action plan
``plan_overdue_days`` after their alert, and plans under review (review date reached, or
a plan the supervisor has not yet reviewed). The supervisor records a review: discussed,
plan agreed, follow-up date.

INTERFACE (issue 19): implemented by the "supervision" helper.
"""
