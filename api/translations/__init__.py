"""Gettext catalogs of the members' pages (see update.py)."""
