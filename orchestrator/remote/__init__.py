"""Talking to hosts: SSH sessions and the agent channel, deploy, gathering the fleet, carrying decisions out."""
