"""Horizontal governance: circles, proposals and their outcomes, agreements, roles given by peers."""
