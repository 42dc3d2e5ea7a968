"""alarmcloud plugin plates."""

__version__ = "0.1.0"
