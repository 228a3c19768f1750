"""World data: the starter world built when the server starts."""
