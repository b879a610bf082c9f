"""Meetings: Janus-backed video rooms with join tokens, a lobby, moderation and TURN credentials."""
