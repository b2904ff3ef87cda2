"""Hours that cross between cooperatives: clearing lines and crossing payments."""
