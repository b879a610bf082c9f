"""SOA platform: the per-tenant messaging, files and meetings service (filled by issue [2/4])."""

__version__ = "0.1.0"
