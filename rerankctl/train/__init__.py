"""Trainers built on the Hugging Face Trainer."""
