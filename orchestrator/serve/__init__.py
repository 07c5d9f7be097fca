"""The controller seen from elsewhere: an embedded read-only HTTP server
(`plot-all --serve`, `dashboard --serve`) over the latest pass's picture, and
`status` answering from it.  discovery.py and instant.py import the standard
library only: they run before fabric, invoke and jinja2 would be imported."""
