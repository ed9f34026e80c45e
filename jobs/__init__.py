"""Scheduled work: the APScheduler ticker and the occurrence executors."""
