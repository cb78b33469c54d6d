"""Realistic trading data for the local environment, sized on request (seed 004's critical data)."""
