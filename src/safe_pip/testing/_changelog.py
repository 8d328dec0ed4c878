"""The XML-RPC changelog endpoint (``POST /pypi``) on the wire, and the ways it fails.

The calls themselves (``changelog_last_serial``, ``changelog_since_serial``,
``list_packages_with_serial``) are answered from the journal by
:class:`~._journal.IndexState`; this module reads the call from the request body and sends
the result, a Fault, or one of the failures a changelog is seen to have (:data:`ChangelogFault`).
"""

from __future__ import annotations

import xmlrpc.client
from collections.abc import Callable
from typing import Any, Literal

from ._http import Handler

ChangelogFault = Literal["401", "403", "405", "500", "garbage", "timeout"]

# The timeout fault sleeps this long at most; stop() interrupts it at once.
_TIMEOUT_FAULT_SECONDS = 3600.0


def read_call(handler: Handler, body: bytes) -> tuple[str, tuple[Any, ...]] | None:
    """The method name and parameters of the XML-RPC call in ``body``; None after answering
    400 to a body that is not one."""
    try:
        params, method = xmlrpc.client.loads(body, use_builtin_types=True)
    except Exception:  # any unparseable body is the client's error
        bad = b"Bad Request: not an XML-RPC call\n"
        handler.respond(400, bad, [("Content-Type", "text/plain")])
        return None
    return method or "", tuple(params)


def send_fault(handler: Handler, fault: ChangelogFault) -> None:
    """Answer as a changelog that fails with ``fault``."""
    if fault == "401":
        headers = [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Basic realm="x"')]
        handler.respond(401, b"Unauthorized\n", headers)
    elif fault == "403":
        handler.respond(403, b"Forbidden\n", [("Content-Type", "text/plain")])
    elif fault == "405":
        headers = [("Content-Type", "text/plain"), ("Allow", "GET")]
        handler.respond(405, b"Method Not Allowed\n", headers)
    elif fault == "500":
        handler.respond(500, b"Internal Server Error\n", [("Content-Type", "text/plain")])
    elif fault == "garbage":
        garbage = b"<?xml version='1.0'?>\n<methodResponse><params><param><value><int>1"
        handler.respond(200, garbage, [("Content-Type", "text/xml")])
    elif fault == "timeout":
        # Longer than any client timeout; stop() sets the event and ends it at once.
        handler.server.stopping.wait(_TIMEOUT_FAULT_SECONDS)
        handler.close_connection = True


def send_result(handler: Handler, answer: Callable[[], object]) -> None:
    """Send ``answer()`` as the XML-RPC response, or the ``xmlrpc.client.Fault`` it raises."""
    try:
        result: Any = answer()  # marshallable
        payload = xmlrpc.client.dumps((result,), methodresponse=True, allow_none=True)
    except xmlrpc.client.Fault as err:
        payload = xmlrpc.client.dumps(err, methodresponse=True, allow_none=True)
    handler.respond(200, payload.encode("utf-8"), [("Content-Type", "text/xml")])
