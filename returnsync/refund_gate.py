"""The refund gate: no marketplace refund is released before it is validated.

On TikTok, approving a received package releases the *full* refund of the request. So the
lifecycle (``returnsync.lifecycle.portal_return_follow_up``) asks the gate, after every
portal change, whether the release may go out; the gate records the answer on the portal
return (``release_state``, ``release_note``) and only ``released`` sends the decision.

Options every returns portal connection carries (a portal connector lists
``PORTAL_OPTIONS`` among its ``Connector.options``):

- ``refund_release``: ``on_inspection`` (default: every expected unit received and every
  line passed inspection), ``on_receipt`` (every expected unit received), or
  ``by_portal`` (the portal's own integration pushes the refund to the marketplace, e.g.
  Loop through Pipe17: ReturnSync never sends the release and checks what arrived);
- ``authorized_refund_basis``: what the portal's authorised value covers, ``subtotal``
  (the items' price, before tax and shipping: the default) or ``total``; the gate
  compares it with the same part of the marketplace's refund figure.
"""
from __future__ import annotations

from returnsync.registry import OptionSpec

ON_INSPECTION, ON_RECEIPT, BY_PORTAL = "on_inspection", "on_receipt", "by_portal"
RELEASE_POLICIES = (ON_INSPECTION, ON_RECEIPT, BY_PORTAL)
SUBTOTAL, TOTAL = "subtotal", "total"

PORTAL_OPTIONS = (
    OptionSpec("refund_release", ON_INSPECTION,
               "When TikTok's full refund may be released: on_inspection (everything back and passed), "
               "on_receipt (everything back), or by_portal (the portal pushes refunds itself; ReturnSync checks)."),
    OptionSpec("authorized_refund_basis", SUBTOTAL,
               "What the portal's authorised refund covers: subtotal (the items' price) or total (with tax "
               "and shipping). It is compared with the same part of TikTok's refund."),
)
