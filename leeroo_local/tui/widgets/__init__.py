"""The chat's widgets, one per module: they render what they are given and post messages."""
