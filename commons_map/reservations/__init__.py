"""Reservations of shared tools and places: rules, bookings, maintenance, waiting list, calendars."""
