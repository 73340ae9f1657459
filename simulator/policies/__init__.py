"""The plug-in families behind small interfaces (`base`): keep-alive and pre-warming,
idle-instance selection, placement and eviction, with their built-ins chosen by name."""
