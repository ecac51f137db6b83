"""End-to-end tests of the web app: Playwright (sync API) driving Debian's Chromium."""
