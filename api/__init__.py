"""The HTTP adapter: FastAPI routes over the services of commons_map."""
