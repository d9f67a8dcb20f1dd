"""chameleon: renders an HTML table with Debian's python3-chameleon (a Zope page
template, app/table.pt, compiled at import time so the snapshot has it ready).
Rows are deterministic and include characters that need escaping. Answers the length
and SHA-256 of the HTML.

Payload: {"rows": N, "columns": M} (default 10 columns).
"""
import hashlib
import os

from chameleon import PageTemplateFile

TEMPLATE = PageTemplateFile(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                         "table.pt"))
TEMPLATE(title="warm-up", columns=["a"], rows=[["<&>"]])  # cook before the snapshot


def handle(event):
    nrows = int(event.get("rows", 100))
    ncols = int(event.get("columns", 10))
    columns = ["col %d" % j for j in range(ncols)]
    rows = [["r%d&c%d <%d>" % (i, j, (i * 7919 + j * 104729) % 1000003)
             for j in range(ncols)] for i in range(nrows)]
    html = TEMPLATE(title="Table of %d rows" % nrows, columns=columns, rows=rows)
    data = html.encode("utf-8")
    return {"rows": nrows, "columns": ncols, "length": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}
