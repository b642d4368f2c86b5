"""Who may do what: one table of roles and permissions for every face of Sapa (web console, Slack desk, CLI).

A permission names a thing staff do; each role has a set of them. The Slack desk and the console ask the same
question (`can(role, permission)`), so a rule changes in one place. Roles (issue 16):

- customer_service: answers conversations, reads customers and tickets, edits profiles.
- account_manager: the same, plus VIP decisions for their customers.
- supervisor: the same, plus reassigning others' conversations, merging and exporting customers, the dashboard.
- management: like supervisor.
- marketing: campaigns and the loyalty programme; never transcripts or customer profiles.
- admin: IT: staff accounts and erasure; everything else too, so a first admin can try the whole product.

The knowledge base (FAQ answers, reply texts) is edited by supervisors and management, who answer for what
customers are told, and admins; agents propose changes to them rather than change what every customer reads.
"""

from __future__ import annotations

from typing import Final, Literal

Role = Literal["customer_service", "account_manager", "supervisor", "management", "marketing", "admin"]
ROLES: Final[tuple[Role, ...]] = ("customer_service", "account_manager", "supervisor", "management", "marketing",
                                  "admin")
ROLE_NAMES: Final[dict[str, dict[str, str]]] = {
    "customer_service": {"id": "Layanan pelanggan", "en": "Customer service"},
    "account_manager": {"id": "Account manager", "en": "Account manager"},
    "supervisor": {"id": "Supervisor", "en": "Supervisor"},
    "management": {"id": "Manajemen", "en": "Management"},
    "marketing": {"id": "Pemasaran", "en": "Marketing"},
    "admin": {"id": "Admin", "en": "Admin"},
}

Permission = Literal[
    "inbox.view",  # the queue of conversations waiting for or held by a person
    "conversation.read",  # a transcript: the customer's words
    "conversation.act",  # claim, reply, note, resolve, escalate, back to bot, transfer one's own
    "conversation.reassign",  # take over or transfer a conversation another agent holds
    "customer.read",  # a customer's profile, channels, consents, tickets (personal data: every view is audited)
    "customer.edit",  # change a profile
    "customer.merge",  # fold a duplicate into the record to keep
    "customer.export",  # a full copy of a customer's data
    "customer.erase",  # erasure (data-protection request)
    "vip.manage",  # make or unmake a VIP
    "tickets.view",
    "dashboard.view",
    "campaigns.manage",  # segments, broadcasts
    "loyalty.adjust",  # points adjustments
    "loyalty.redeem",  # redeem a reward for a customer
    "staff.manage",  # staff accounts
    "knowledge.edit",  # FAQ entries and reply texts (issue 17); reading them needs no permission beyond signing in
]

_DESK: Final = frozenset({"inbox.view", "conversation.read", "conversation.act", "customer.read", "customer.edit",
                          "tickets.view", "loyalty.redeem"})
_SENIOR: Final = _DESK | {"conversation.reassign", "customer.merge", "customer.export", "vip.manage",
                          "dashboard.view", "loyalty.adjust", "knowledge.edit"}
GRANTS: Final[dict[str, frozenset[str]]] = {
    # Merging is a desk task in the Slack commands (`/sapa merge`) since issue 11: customer service keeps it.
    "customer_service": _DESK | {"customer.merge"},
    "account_manager": _DESK | {"customer.merge", "vip.manage"},
    "supervisor": _SENIOR,
    "management": _SENIOR,
    "marketing": frozenset({"campaigns.manage", "loyalty.adjust"}),
    "admin": _SENIOR | {"campaigns.manage", "customer.erase", "staff.manage"},
}


def can(role: str | None, permission: Permission) -> bool:
    """Whether a member of staff with `role` may do `permission`; an unknown role may do nothing."""
    return role is not None and permission in GRANTS.get(role, frozenset())


def roles_with(permission: Permission) -> tuple[str, ...]:
    """The roles that have `permission`, in ROLES order (for messages such as "ask a supervisor")."""
    return tuple(role for role in ROLES if permission in GRANTS[role])
