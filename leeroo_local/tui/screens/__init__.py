"""The chat's screens: the main chat, the expert picker and the history browser."""
