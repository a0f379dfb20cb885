"""Run records (files, the truth) and the SQLite index derived from them."""
