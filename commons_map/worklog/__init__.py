"""Volunteer work logs on the commons, their activities and their approval."""
