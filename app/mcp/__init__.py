"""MCP front end: the dakera tools for agent hosts, over Streamable HTTP at /mcp (http.py, in
the server's app) and over stdio (`dakera mcp`, stdio.py). tools.py holds the tools,
backend.py where their requests go, server.py the SDK server that serves them."""
