"""The local dashboard: a read-only JSON API over the lab (app.py) and a static front end (static/).

Starlette and uvicorn are imported only by app.py and server.py, which load when `assay ui` runs.
"""
