"""The local web page: its server (FastAPI), its jobs and its static files; started by ``python web.py``."""
