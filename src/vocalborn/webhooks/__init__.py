"""Signed webhooks (issue #25): admins register endpoints; the ``webhooks`` consumer turns each
event of their types into one delivery row per endpoint, and the dispatcher sends them (Standard
Webhooks signatures, retries with backoff for up to 24 h, order per learner, SSRF guard).
docs/EVENTS.md, "Webhooks"."""
