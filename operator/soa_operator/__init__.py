"""SOA operator: turns SOATenant resources into isolated ministry workspaces."""

__version__ = "0.1.0"
