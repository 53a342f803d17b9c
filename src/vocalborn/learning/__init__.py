"""The practice product around the analyses: history, progress, linking, reviews, assignments.

One module per feature owns its transactions (``access`` holds who may see a learner, the rule
all of them apply): ``history``, ``progress``, ``dashboard``, ``links``, ``reviews``,
``assignments``. The HTTP side is ``router`` (history, progress, dashboard; it includes
``links_router``, ``reviews_router`` and ``assignments_router``), with ``http`` for what the
routes share; ``models`` and ``schemas`` are the tables and the API shapes.
"""
