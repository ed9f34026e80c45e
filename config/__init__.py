"""Configuration: settings from the environment and `.env`, and logging."""
