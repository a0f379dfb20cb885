"""Drive the real `assay mcp` server over stdio with the official SDK's client (as an agent would)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any


async def call_tools(lab_root: Path, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Start `assay mcp` in `lab_root`, make each (tool, arguments) call in order, return the results."""
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    # The SDK passes the server only a few variables by default; pass ours so PYTHONPATH reaches it.
    params = StdioServerParameters(command=sys.executable, args=["-m", "assay.cli.main", "mcp"], cwd=str(lab_root),
                                   env=dict(os.environ))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await asyncio.wait_for(session.initialize(), 60)
        return [await asyncio.wait_for(session.call_tool(name, args), 120) for name, args in calls]


def error_text(result: Any) -> str:
    assert result.is_error, f"expected a tool error, got {result.content[0].text[:300]}"
    return result.content[0].text
