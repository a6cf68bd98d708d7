"""Sharpness-aware wrappers: two gradient evaluations per step around any base optimizer."""
