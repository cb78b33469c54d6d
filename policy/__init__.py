"""The CrossGuard policy pack: ``rules`` holds the pure checks, ``pack`` wraps them for Pulumi."""
