"""Property-based corpus: hostile input gets a 4xx, never a 5xx, a dropped connection or another user's data."""
