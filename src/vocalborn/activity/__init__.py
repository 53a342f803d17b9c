"""The learner-activity projection (issue #25, event sourcing): per learner per day the attempts
that count and the minutes practised, built from the event stream by the ``learner-activity``
consumer and rebuilt by ``vocalborn events rebuild learner-activity``. docs/EVENTS.md, "Replay"."""
