"""The one path every change takes (`path`), the results it returns (`results`), and the
access gate it starts with. Slash commands, buttons, the console and the autoscaler all
call it; nothing here knows about Slack."""
