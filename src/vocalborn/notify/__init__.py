"""Notifications (issue #25): the in-app inbox, mail through SMTP, per-user preferences, the
therapist's daily digest, and the account mails (verification, password reset). Fed by the
``notifications`` event consumer (notify/consumer.py); docs/EVENTS.md, "Notifications"."""
