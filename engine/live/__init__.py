"""Live content: loading and reloading it (the manager), its lifecycle hooks, type class
reports, module versions, and crash markers for modules that end the process.
"""
