"""meterwatch: streaming consumption-anomaly service for electric utilities."""

__version__ = "0.1.0"
