"""The staff web app (`/console`): its routes, Jinja2 `templates/` and vendored `static/` assets."""
