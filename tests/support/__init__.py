"""Helpers the test tiers share: an exposition-text reader and real processes to test against."""
