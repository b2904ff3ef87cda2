"""The register of commons: lands, gardens, beds, tools, housing, places."""
