"""Files the central system hosts for its chargers: the firmware library, and the diagnostics and
logs chargers upload; served over HTTP (files/http.py) and FTP (files/ftp.py) to whoever holds a
one-time grant (files/grants.py)."""
