"""The built-in recipes, installed with mdt: ``mdt run quickstart`` (a name, not a path)
reads ``quickstart.toml`` from here, from any folder; ``mdt recipe list`` lists them."""
