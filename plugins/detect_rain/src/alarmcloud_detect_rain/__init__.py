"""alarmcloud plugin rain."""

__version__ = "0.1.0"
