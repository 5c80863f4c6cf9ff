"""Bananas side by side with the Python task queues people would pick instead."""
