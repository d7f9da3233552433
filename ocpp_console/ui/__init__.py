"""The Textual console; depends on csms, never the other way round."""
