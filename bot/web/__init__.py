"""The web dyno (`web:` in the Procfile): Flask serving slack_bolt, the log drain and the
Heroku webhook intake, and gunicorn's settings. It never imports `bot.worker`."""
