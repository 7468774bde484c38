"""One router per resource. Each carries the full /api/v1 prefix itself, so its routes know their
whole path template (metrics label requests with it)."""

API_PREFIX = "/api/v1"
