"""The sandbox: fake Heroku, Beanstalk and Slack (`fakes/`), demo apps (`demo`), the
console (`console`) and the spike play (`spike`). Imported only by `bot.__main__` and the
tests, never by the code that runs in production."""
