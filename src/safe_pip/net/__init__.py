"""Reaching indexes over HTTP as pip would: URLs, credentials and the requests session."""
