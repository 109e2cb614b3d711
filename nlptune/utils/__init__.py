"""Small helpers with no heavy imports at module level: console, seeding, environment capture."""
