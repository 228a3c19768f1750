"""Live content: loading and reloading ``content/``, the watchdog and guard it runs under,
content errors, lifecycle hooks and the tasks content owns."""
