"""The Textual console; it sees the site only through ocpp_console.site (csms never imports it)."""
