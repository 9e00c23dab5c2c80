"""Pure decisions on plain data: no Slack, no HTTP, no database."""
