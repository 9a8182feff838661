"""Front ends of newsqa: the command line, the HTTP API and the Telegram bot."""
