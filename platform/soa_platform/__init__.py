"""SOA's tenant platform: messaging, files and meetings of one ministry."""

__version__ = "0.1.0"
