"""alarmcloud plugin instar."""

__version__ = "0.1.0"
