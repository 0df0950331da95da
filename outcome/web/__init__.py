"""The web edge: Flask blueprints, templates and the request-scoped database session."""
