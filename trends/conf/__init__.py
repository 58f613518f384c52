"""Hydra configs (installed as trends.conf), shipped as package data so `trends` finds them from any folder."""
