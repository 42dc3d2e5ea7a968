"""alarmcloud plugin google_home."""

__version__ = "0.1.0"
