"""VocalBorn Tasks."""
