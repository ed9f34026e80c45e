"""`python -m jobs.worker`: the scheduler alone, for deployments that run web and worker processes apart.

It plans and posts scheduled work (check-in prompts, reminders, summaries) and serves GET /healthz on
PORT; it answers no Slack requests. Run any number of them on PostgreSQL; on SQLite the bot and the
worker cannot run at once (one process holds the database).
"""

from __future__ import annotations

import sys

from bot import main

if __name__ == "__main__":
    sys.exit(main(worker=True))
