"""Hydra configs, shipped as package data so `trends` finds them from any folder, editable or installed."""
