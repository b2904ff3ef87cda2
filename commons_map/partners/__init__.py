"""Partner initiatives: other OGC API - Features servers whose public layers join our public map."""
