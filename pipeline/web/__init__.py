"""The status page (``saltpipe serve``): a read-only web app over the state directory. See docs/status-page.md.

* :mod:`pipeline.web.data` - what the pages show, read from the state directory (and the job cache)
* :mod:`pipeline.web.app` - the Starlette app and its Jinja2 templates
* :mod:`pipeline.web.server` - bind rules (a token off loopback) and uvicorn
"""
