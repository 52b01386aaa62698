"""AI Secretary database initialisation: initdb, dbhealth, dbrepair, resetdb and start-up checks."""
