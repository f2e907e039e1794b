"""The web console's server: static files of the single-page app and the API proxy."""
