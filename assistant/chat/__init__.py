"""Answering: stream events, answer providers and prompts."""
