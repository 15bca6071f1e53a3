"""Browser tests: the client at GET / in headless Chromium."""
