"""Alice Voice: a self-hosted real-time voice-agent gateway."""

__version__ = "0.1.0"
