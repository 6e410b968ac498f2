"""The Model: embedding -> encoder -> target."""
