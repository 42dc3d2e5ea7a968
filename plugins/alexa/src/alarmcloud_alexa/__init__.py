"""alarmcloud plugin alexa."""

__version__ = "0.1.0"
