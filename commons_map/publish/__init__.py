"""The public layers: what the public, GIS tools and other cooperatives may read.

One privacy rule, in one place (``sql.public_source``): only commons marked public and not
archived, places marked approximate snapped to the register's grid, never a member's name.
"""
