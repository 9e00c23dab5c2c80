"""The worker dyno (`worker:` in the Procfile): the scheduler's leader lease, the autoscale
tick, the detectors, the outbox sender and the retention jobs. It never imports `bot.web`."""
