"""Soil regeneration and food production: observations, practices, harvests, stocks, reports."""
