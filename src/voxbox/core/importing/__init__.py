"""Importing chats exported from other apps: reading their files safely, and keeping them."""
