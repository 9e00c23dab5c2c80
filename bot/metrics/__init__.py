"""Traffic metrics from Heroku log drains: 10-second windows per app (`aggregate`)."""
