"""alarmcloud plugin ifttt."""

__version__ = "0.1.0"
