"""Reports drawn from the evidence a drill run keeps (``$LAB_DIR/runs/<run>/``).

``runs`` reads run folders (never writes them), ``timeline`` turns one drill's
event stream into lanes and draws them, ``render`` writes the HTML page and the
Markdown summary under ``$LAB_DIR/reports/<run>/``.
"""
