"""Cooperatives, members, roles, passwords and tokens."""
