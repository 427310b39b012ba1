"""HTTP routes of the Starlette app, and the one place errors are rendered."""
