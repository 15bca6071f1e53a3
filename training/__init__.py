"""Training recipes for the models this project builds itself (not shipped in the package)."""
