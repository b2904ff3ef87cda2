"""Offers and needs: members find each other, exchange services and are paid in time."""
