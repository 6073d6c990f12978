"""allauth providers of our own, for platforms allauth does not ship (WeCom)."""
