"""Built-in prompters plugins."""
